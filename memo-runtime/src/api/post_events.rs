//! Which handler outcomes become Kubernetes Events on their object.

use std::fmt;
use std::str::FromStr;

/// Which handler outcomes are posted as Kubernetes Events on the handler's object, as kopf
/// posts them: [`Operator::post_events`](crate::Operator::post_events), `--post-events`.
///
/// Only when the operator runs against a cluster; Events are best effort, and at most one
/// `Warning` (and one `Normal`) per object every [`PostEvents::MIN_INTERVAL`] is posted for
/// outcomes (a handler's own [`Recorder`](crate::Recorder) notes are not limited).
///
/// ```
/// use memo_runtime::PostEvents;
///
/// assert_eq!("warning".parse::<PostEvents>(), Ok(PostEvents::Warning));
/// assert_eq!(PostEvents::default(), PostEvents::Warning);
/// assert!("loud".parse::<PostEvents>().is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PostEvents {
    /// Nothing.
    None,
    /// A `Warning` Event when a handler fails, temporarily or for good (the default).
    #[default]
    Warning,
    /// Also a `Normal` Event when a retried handler succeeds.
    All,
}

impl PostEvents {
    /// The shortest time between two outcome Events about one object: a handler failing in a
    /// loop must not flood the cluster's Events.
    pub const MIN_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

    /// The flag's spelling: `none`, `warning` or `all`.
    pub fn as_str(self) -> &'static str {
        match self {
            PostEvents::None => "none",
            PostEvents::Warning => "warning",
            PostEvents::All => "all",
        }
    }
}

impl fmt::Display for PostEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PostEvents {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "none" => Ok(PostEvents::None),
            "warning" => Ok(PostEvents::Warning),
            "all" => Ok(PostEvents::All),
            other => Err(format!("`{other}` is not one of `none`, `warning`, `all`")),
        }
    }
}
