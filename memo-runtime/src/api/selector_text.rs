//! A copy of `memo-macros/src/selector.rs`, so that a selector the macro accepted at compile time
//! is read the same way when the operator runs (a crate cannot include another's file and still
//! be packaged); the test `selectors_read_alike` keeps the two in step.
//!
//! Kubernetes label-selector syntax, as `labels = "…"` and `annotations = "…"` accept it:
//! comma-separated requirements, all of which must hold.
//!
//! Plain Rust with no dependency. Everything below this header is the same in both copies.

/// What a selector filters on; it decides which values are valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// Values are label values: at most 63 characters of `[A-Za-z0-9._-]`, starting and ending
    /// with a letter or digit, or empty.
    Labels,
    /// Values are any text without whitespace, `,`, `(` or `)`: annotation values are free text,
    /// and only those characters would end the value in the selector's syntax.
    Annotations,
}

impl Target {
    fn noun(self) -> &'static str {
        match self {
            Target::Labels => "label",
            Target::Annotations => "annotation",
        }
    }
}

/// How a requirement tests its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operator {
    /// `key=value`, `key==value`: present with this value.
    Equals,
    /// `key!=value`: absent, or present with another value.
    NotEquals,
    /// `key in (a, b)`: present with one of these values.
    In,
    /// `key notin (a, b)`: absent, or present with none of these values.
    NotIn,
    /// `key`: present, with any value.
    Exists,
    /// `!key`: absent.
    NotExists,
}

/// One comma-separated part of a selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Requirement {
    pub(crate) key: String,
    pub(crate) operator: Operator,
    /// One value for `=` and `!=`, at least one for `in` and `notin`, none otherwise.
    pub(crate) values: Vec<String>,
}

/// Why a selector does not parse: the bytes of the text at fault, and what to write instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    /// Byte offsets into the selector text; `start == end` points between two characters (at the
    /// end, for a selector cut short).
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) message: String,
}

const OPERATORS: &str = "use `=`, `==`, `!=`, `in (…)` or `notin (…)`";

/// Parses a selector: `tier=web`, `tier==web`, `tier!=web`, `env in (prod, staging)`,
/// `env notin (dev)`, `tier` (present), `!legacy` (absent), joined by commas. Whitespace may
/// surround every token.
pub(crate) fn parse(text: &str, target: Target) -> Result<Vec<Requirement>, SyntaxError> {
    let mut parser = Parser { text, pos: 0, target };
    parser.skip_whitespace();
    if parser.at_end() {
        return Err(parser.error(
            0,
            text.len(),
            "the selector is empty: write at least one requirement, such as `tier=web`, or leave \
             the filter out to match every object"
                .to_owned(),
        ));
    }
    let mut requirements = Vec::new();
    loop {
        requirements.push(parser.requirement()?);
        parser.skip_whitespace();
        match parser.peek() {
            None => return Ok(requirements),
            Some(',') => {
                let comma = parser.pos;
                parser.pos += 1;
                parser.skip_whitespace();
                if parser.at_end() {
                    return Err(parser.error(
                        comma,
                        comma + 1,
                        "expected a requirement after `,`: remove the trailing comma".to_owned(),
                    ));
                }
            }
            Some(_) => {
                let (start, end) = parser.next_token();
                return Err(parser.error(
                    start,
                    end,
                    format!("expected `,` between requirements, found `{}`", &text[start..end]),
                ));
            }
        }
    }
}

struct Parser<'t> {
    text: &'t str,
    pos: usize,
    target: Target,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn at_end(&self) -> bool {
        self.pos == self.text.len()
    }

    fn skip_whitespace(&mut self) {
        let rest = &self.text[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn error(&self, start: usize, end: usize, message: String) -> SyntaxError {
        SyntaxError { start, end, message }
    }

    /// Reads while `keep` holds; returns the span read.
    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> (usize, usize) {
        let start = self.pos;
        let rest = &self.text[start..];
        self.pos += rest.find(|c: char| !keep(c)).unwrap_or(rest.len());
        (start, self.pos)
    }

    /// The span of what comes next, for an error to point at: a word, or one symbol.
    fn next_token(&self) -> (usize, usize) {
        let rest = &self.text[self.pos..];
        let word = rest
            .find(|c: char| c.is_whitespace() || is_symbol(c))
            .unwrap_or(rest.len());
        let len = if word > 0 {
            word
        } else {
            rest.chars().next().map_or(0, char::len_utf8)
        };
        (self.pos, self.pos + len)
    }

    fn found(&self) -> String {
        let (start, end) = self.next_token();
        if start == end {
            "the end of the selector".to_owned()
        } else {
            format!("`{}`", &self.text[start..end])
        }
    }

    fn requirement(&mut self) -> Result<Requirement, SyntaxError> {
        if self.peek() == Some('!') {
            let bang = self.pos;
            self.pos += 1;
            self.skip_whitespace();
            let key = self.key()?;
            self.skip_whitespace();
            if matches!(self.peek(), Some(c) if c != ',') {
                let (_, end) = self.next_token();
                return Err(self.error(
                    bang,
                    end,
                    format!(
                        "`!{key}` takes no operator or value: it requires that `{key}` is absent; write \
                         `{key}!=value` to exclude one value"
                    ),
                ));
            }
            return Ok(Requirement {
                key,
                operator: Operator::NotExists,
                values: Vec::new(),
            });
        }
        let key = self.key()?;
        self.skip_whitespace();
        let operator_start = self.pos;
        let operator = match self.peek() {
            None | Some(',') => {
                return Ok(Requirement {
                    key,
                    operator: Operator::Exists,
                    values: Vec::new(),
                });
            }
            Some('=') => {
                self.pos += 1;
                if self.peek() == Some('=') {
                    self.pos += 1;
                }
                Operator::Equals
            }
            Some('!') => {
                self.pos += 1;
                if self.peek() != Some('=') {
                    return Err(self.error(
                        operator_start,
                        self.pos,
                        format!("expected `=` after `!`: write `{key}!=value`, or `!{key}` for an absent key"),
                    ));
                }
                self.pos += 1;
                Operator::NotEquals
            }
            Some(symbol @ ('<' | '>')) => {
                return Err(self.error(
                    operator_start,
                    operator_start + 1,
                    format!("`{symbol}` is not supported in these selectors: {OPERATORS}"),
                ));
            }
            Some('(') => {
                return Err(self.error(
                    operator_start,
                    operator_start + 1,
                    format!("expected an operator before `(`: write `{key} in (a, b)`"),
                ));
            }
            Some(')') => {
                return Err(self.error(
                    operator_start,
                    operator_start + 1,
                    "unexpected `)`: no value list is open".to_owned(),
                ));
            }
            Some(_) => {
                let (start, end) = self.take_while(|c| !c.is_whitespace() && !is_symbol(c));
                match &self.text[start..end] {
                    "in" => Operator::In,
                    "notin" => Operator::NotIn,
                    word => {
                        return Err(self.error(
                            start,
                            end,
                            format!(
                                "expected an operator after `{key}`, found `{word}`: {OPERATORS}, or `,` to \
                                 start the next requirement"
                            ),
                        ));
                    }
                }
            }
        };
        let operator = match operator {
            Operator::Equals | Operator::NotEquals => {
                self.skip_whitespace();
                if self.peek() == Some('(') {
                    let written = &self.text[operator_start..self.pos].trim_end();
                    return Err(self.error(
                        self.pos,
                        self.pos + 1,
                        format!(
                            "`{written}` takes one value, not a list: write `{key} {}in (a, b)` to allow \
                             several",
                            if operator == Operator::NotEquals { "not" } else { "" }
                        ),
                    ));
                }
                let value = self.value()?;
                return Ok(Requirement {
                    key,
                    operator,
                    values: vec![value],
                });
            }
            other => other,
        };
        let word = if operator == Operator::In { "in" } else { "notin" };
        self.skip_whitespace();
        if self.peek() != Some('(') {
            let (start, end) = self.next_token();
            return Err(self.error(
                start,
                end,
                format!(
                    "expected `(` to open the value list after `{word}`, found {}: write `{key} {word} (a, b)`",
                    self.found()
                ),
            ));
        }
        let open = self.pos;
        self.pos += 1;
        let mut values = Vec::new();
        loop {
            self.skip_whitespace();
            let value_start = self.pos;
            let value = self.value()?;
            self.skip_whitespace();
            match self.peek() {
                Some(',') => {
                    values.push(value);
                    self.pos += 1;
                }
                Some(')') => {
                    if values.is_empty() && value_start == self.pos {
                        return Err(self.error(
                            open,
                            self.pos + 1,
                            format!(
                                "the value list of `{word}` is empty: name at least one value, as in `{key} {word} (a)`"
                            ),
                        ));
                    }
                    values.push(value);
                    self.pos += 1;
                    return Ok(Requirement { key, operator, values });
                }
                None => {
                    return Err(self.error(
                        self.pos,
                        self.pos,
                        format!("expected `)` to close the value list opened at byte {open}"),
                    ));
                }
                Some(_) => {
                    let (start, end) = self.next_token();
                    return Err(self.error(
                        start,
                        end,
                        format!(
                            "expected `,` or `)` in the value list, found `{}`: separate values with commas",
                            &self.text[start..end]
                        ),
                    ));
                }
            }
        }
    }

    fn key(&mut self) -> Result<String, SyntaxError> {
        let (start, end) = self.take_while(|c| !c.is_whitespace() && !is_symbol(c));
        if start == end {
            let found = self.found();
            return Err(self.error(start, self.next_token().1, format!("expected a key, found {found}")));
        }
        let key = &self.text[start..end];
        if let Err(reason) = check_key(key) {
            let noun = self.target.noun();
            return Err(self.error(start, end, format!("`{key}` is not a valid {noun} key: {reason}")));
        }
        Ok(key.to_owned())
    }

    /// A value, possibly empty (`tier=` requires an empty value, as in Kubernetes).
    fn value(&mut self) -> Result<String, SyntaxError> {
        let (start, end) = self.take_while(|c| !c.is_whitespace() && !matches!(c, ',' | '(' | ')'));
        let value = &self.text[start..end];
        if self.target == Target::Labels
            && let Err(reason) = check_label_value(value)
        {
            return Err(self.error(start, end, format!("`{value}` is not a valid label value: {reason}")));
        }
        Ok(value.to_owned())
    }
}

/// Characters that end a key: the selector's own punctuation.
fn is_symbol(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '<' | '>')
}

fn is_alphanumeric(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

/// A qualified name, as Kubernetes requires of label and annotation keys: `name` or
/// `prefix/name`, the prefix a DNS subdomain of at most 253 characters, the name at most 63
/// characters of `[A-Za-z0-9._-]` that start and end with a letter or digit.
fn check_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        if name.contains('/') {
            return Err("it has more than one `/`; a key is `name` or `prefix/name`".to_owned());
        }
        if prefix.is_empty() {
            return Err("the prefix before `/` is empty".to_owned());
        }
        if prefix.len() > 253 {
            return Err(format!("its prefix is {} characters long, more than 253", prefix.len()));
        }
        let dns_label = |part: &str| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && part.starts_with(is_alphanumeric)
                && part.ends_with(is_alphanumeric)
        };
        if !prefix.split('.').all(dns_label) {
            return Err(format!(
                "its prefix `{prefix}` is not a DNS subdomain: dot-separated parts of lowercase letters, \
                 digits and `-`, each starting and ending with a letter or digit, like `example.com`"
            ));
        }
    }
    if name.is_empty() {
        return Err("the name after `/` is empty".to_owned());
    }
    if name.len() > 63 {
        return Err(format!("its name is {} characters long, more than 63", name.len()));
    }
    if !name.chars().all(|c| is_alphanumeric(c) || matches!(c, '-' | '_' | '.')) {
        return Err("a name has only letters, digits, `-`, `_` and `.`".to_owned());
    }
    if !name.starts_with(is_alphanumeric) || !name.ends_with(is_alphanumeric) {
        return Err("a name starts and ends with a letter or digit".to_owned());
    }
    Ok(())
}

/// A label value: empty, or at most 63 characters of `[A-Za-z0-9._-]` that start and end with a
/// letter or digit.
fn check_label_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    if value.len() > 63 {
        return Err(format!("it is {} characters long, more than 63", value.len()));
    }
    if !value
        .chars()
        .all(|c| is_alphanumeric(c) || matches!(c, '-' | '_' | '.'))
    {
        return Err("a label value has only letters, digits, `-`, `_` and `.`".to_owned());
    }
    if !value.starts_with(is_alphanumeric) || !value.ends_with(is_alphanumeric) {
        return Err("a label value starts and ends with a letter or digit".to_owned());
    }
    Ok(())
}
