//! The key layout of a memory in Redis (documented on `RedisStore`).

use crate::store::MemoryId;

/// Appends a bot or component name as a key segment: `%` and `:` escaped so that it ends where it
/// seems to.
fn push_segment(out: &mut String, name: &str) {
    for c in name.chars() {
        match c {
            '%' => out.push_str("%25"),
            ':' => out.push_str("%3A"),
            c => out.push(c),
        }
    }
}

/// Appends the prefix of every key of a memory.
fn push_root(out: &mut String, memory: &MemoryId) {
    out.push_str("memo:");
    push_segment(out, memory.bot());
    match memory.component() {
        Some(component) => {
            out.push_str(":component:");
            push_segment(out, component);
        }
        None => out.push_str(":bot"),
    }
}

/// The prefix of every key of a memory.
pub(super) fn root(memory: &MemoryId) -> String {
    let mut out = String::new();
    push_root(&mut out, memory);
    out
}

/// One key of a memory, in one allocation: these are built on every call.
pub(super) fn key_of(memory: &MemoryId, kind: &str, name: &str) -> String {
    let component = memory.component().map_or(0, str::len);
    let mut out = String::with_capacity(32 + memory.bot().len() + component + kind.len() + name.len());
    push_root(&mut out, memory);
    out.push(':');
    out.push_str(kind);
    out.push(':');
    out.push_str(name);
    out
}

pub(super) fn value_key(memory: &MemoryId, key: &str) -> String {
    key_of(memory, "value", key)
}

pub(super) fn lock_key(memory: &MemoryId, name: &str) -> String {
    key_of(memory, "lock", name)
}

pub(super) fn fence_key(memory: &MemoryId, name: &str) -> String {
    key_of(memory, "fence", name)
}

/// `text` matched literally by a `SCAN MATCH` pattern.
pub(super) fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_reach_into_other_memories() {
        let plain = root(&MemoryId::new("bot", Some("c")));
        let sneaky = root(&MemoryId::new("bot:component:c", None));
        assert_eq!(plain, "memo:bot:component:c");
        assert_eq!(sneaky, "memo:bot%3Acomponent%3Ac:bot");
        assert_eq!(value_key(&MemoryId::new("b", None), "k:1"), "memo:b:bot:value:k:1");
    }

    #[test]
    fn patterns_match_literally() {
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
