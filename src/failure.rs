//! Why a command failed, typed: each module's error says its [`ExitClass`] ([`Classify`],
//! next to the error), and [`Failure`], the error of every operation of [`crate::app`] and
//! of the CLI, carries the class of its first cause and its [`Hint`] from there to the exit
//! status. Nothing is found again by downcasting: the class is taken when the error enters a
//! `Failure` (`?`), and kept through [`Context`].
//!
//! A bottom module: it imports nothing of the crate.

use std::fmt;

/// The kind of problem that ended a command, and so its exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitClass {
    /// The command line or the lab file (exit status 2).
    Usage,
    /// The host: libvirt, files, the network between (exit status 3).
    Host,
    /// A node: SSH, provisioning, a failed check (exit status 4).
    Guest,
    /// Stopped by SIGINT, SIGTERM or SIGHUP (130, as a shell reports Ctrl-C).
    Interrupted,
}

impl ExitClass {
    /// The process's exit status for this class.
    pub const fn code(self) -> u8 {
        match self {
            ExitClass::Usage => 2,
            ExitClass::Host => 3,
            ExitClass::Guest => 4,
            ExitClass::Interrupted => 130,
        }
    }

    /// The hint a failure of this class gets unless its error says otherwise: a node's
    /// problem is looked at on the node.
    pub fn default_hint(self) -> Option<Hint> {
        (self == ExitClass::Guest).then_some(Hint::LookAtTheNodes)
    }
}

/// What to do after a failure, beyond what its message says; the CLI words it with the
/// lab's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hint {
    /// The nodes stay up to be looked at; fix the cause and re-run (done steps are kept).
    LookAtTheNodes,
}

/// An error that knows what kind of problem it is.
pub trait Classify {
    /// Its exit class.
    fn class(&self) -> ExitClass;
    /// What to do next: by default, [`ExitClass::default_hint`].
    fn hint(&self) -> Option<Hint> {
        self.class().default_hint()
    }
}

impl Classify for std::io::Error {
    fn class(&self) -> ExitClass {
        ExitClass::Host
    }
}

/// A lab file or a JSON file lab keeps that does not parse: a problem of the host's files.
impl Classify for serde_json::Error {
    fn class(&self) -> ExitClass {
        ExitClass::Host
    }
}

/// The error of an operation: its causes, outermost first, with the class and hint of the
/// one that started it.
pub struct Failure {
    class: ExitClass,
    hint: Option<Hint>,
    error: anyhow::Error,
}

/// A result whose error is a [`Failure`].
pub type Result<T, E = Failure> = std::result::Result<T, E>;

impl Failure {
    /// A failure of class `class` (hint: the class's default) saying `message`.
    pub fn new(class: ExitClass, message: impl fmt::Display) -> Failure {
        Failure {
            class,
            hint: class.default_hint(),
            error: anyhow::Error::msg(message.to_string()),
        }
    }

    /// A problem of the host (exit status 3) saying `message`.
    pub fn host(message: impl fmt::Display) -> Failure {
        Failure::new(ExitClass::Host, message)
    }

    /// Its exit class.
    pub fn class(&self) -> ExitClass {
        self.class
    }

    /// What to do next, if anything beyond the message.
    pub fn hint(&self) -> Option<Hint> {
        self.hint
    }

    /// The same failure, its message led by `context`.
    pub fn context(self, context: impl fmt::Display + Send + Sync + 'static) -> Failure {
        Failure {
            error: self.error.context(context),
            ..self
        }
    }

    /// A cause of type `E` in its chain, for the callers that act on one.
    pub fn downcast_ref<E>(&self) -> Option<&E>
    where
        E: fmt::Display + fmt::Debug + Send + Sync + 'static,
    {
        self.error.downcast_ref()
    }
}

impl<E> From<E> for Failure
where
    E: Classify + std::error::Error + Send + Sync + 'static,
{
    fn from(error: E) -> Failure {
        Failure {
            class: error.class(),
            hint: error.hint(),
            error: error.into(),
        }
    }
}

/// `{}`: the outermost message; `{:#}`: every cause, joined by `: `.
impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            write!(f, "{:#}", self.error)
        } else {
            write!(f, "{}", self.error)
        }
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} ({:?})", self.error, self.class)
    }
}

/// Context on a result, its class kept.
pub trait Context<T> {
    /// The error, if any, led by `context`.
    fn context(self, context: impl fmt::Display + Send + Sync + 'static) -> Result<T>;
    /// The error, if any, led by what `context` says.
    fn with_context<C: fmt::Display + Send + Sync + 'static>(
        self,
        context: impl FnOnce() -> C,
    ) -> Result<T>;
}

impl<T, E: Into<Failure>> Context<T> for std::result::Result<T, E> {
    fn context(self, context: impl fmt::Display + Send + Sync + 'static) -> Result<T> {
        self.map_err(|e| e.into().context(context))
    }

    fn with_context<C: fmt::Display + Send + Sync + 'static>(
        self,
        context: impl FnOnce() -> C,
    ) -> Result<T> {
        self.map_err(|e| e.into().context(context()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("guest down")]
    struct Down;

    impl Classify for Down {
        fn class(&self) -> ExitClass {
            ExitClass::Guest
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("checks failed")]
    struct Checks;

    impl Classify for Checks {
        fn class(&self) -> ExitClass {
            ExitClass::Guest
        }
        fn hint(&self) -> Option<Hint> {
            None
        }
    }

    fn fails() -> Result<()> {
        Err(Down)?
    }

    #[test]
    fn the_class_and_hint_of_the_first_cause_survive_context() {
        let f = fails().context("during up").unwrap_err();
        assert_eq!(f.class(), ExitClass::Guest);
        assert_eq!(f.class().code(), 4);
        assert_eq!(f.hint(), Some(Hint::LookAtTheNodes));
        assert_eq!(format!("{f:#}"), "during up: guest down");
        assert_eq!(f.to_string(), "during up");
        assert!(f.downcast_ref::<Down>().is_some());
    }

    #[test]
    fn an_error_may_say_it_needs_no_hint() {
        let f = Failure::from(Checks);
        assert_eq!((f.class(), f.hint()), (ExitClass::Guest, None));
        let io = std::io::Error::other("disk full");
        let f = Err::<(), _>(io).context("cannot write x").unwrap_err();
        assert_eq!((f.class(), f.hint()), (ExitClass::Host, None));
        assert_eq!(format!("{f:#}"), "cannot write x: disk full");
    }
}
