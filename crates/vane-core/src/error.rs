//! What a plugin's failure asks of the runtime: one outcome type per role,
//! each naming exactly what the runtime then does, and the error that
//! carries it.
//!
//! | role, call | outcomes (default first) |
//! |---|---|
//! | any `build` | [`BuildAction`]: `Retry` (build again after a backoff), `Stop` (the job stays stopped) |
//! | source `poll` | [`SourceAction`]: `Retry` (next interval), `Restart` (rebuild after a backoff), `Stop` (the job stops) |
//! | service `run` | [`ServiceAction`]: `Restart` (rebuild after a backoff), `Stop` (the job stops) |
//! | engine `process`, `beat` | [`EngineAction`]: `Skip` (what the call made is dropped, counted), `Restart` (the same, and the engine is rebuilt) |
//! | sink `prepare`, `send` | [`SinkAction`]: `Retry` (again after a backoff), `GiveUp` (the batch is given up, counted), `Stop` (the sink stops; what reaches it is dropped, counted) |
//!
//! A panic counts as `Restart` wherever there is one (`Retry` for a sink,
//! `Retry` for a build).

use std::fmt;

/// Any error, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A plugin error: what went wrong, and what the runtime does about it (`A`,
/// the role's outcome).
///
/// Any `std::error::Error`, `String` or `&str` converts with `?` or
/// `.into()`, taking the role's default outcome. It deliberately does not
/// implement `std::error::Error` itself: that is what lets every error
/// convert into it.
pub struct Error<A> {
    inner: BoxError,
    action: A,
}

impl<A: Copy> Error<A> {
    /// An error with an outcome.
    pub fn new(action: A, e: impl Into<BoxError>) -> Error<A> {
        Error { inner: e.into(), action }
    }

    /// What the runtime is to do.
    pub fn action(&self) -> A {
        self.action
    }

    /// The same error for another role or call (a helper's error returned
    /// from `build`, say).
    pub fn with<B: Copy>(self, action: B) -> Error<B> {
        Error { inner: self.inner, action }
    }

    /// The error, without the outcome.
    pub fn into_inner(self) -> BoxError {
        self.inner
    }
}

impl<A: Default + Copy, E: Into<BoxError>> From<E> for Error<A> {
    fn from(e: E) -> Error<A> {
        Error::new(A::default(), e)
    }
}

impl<A> fmt::Display for Error<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)?;
        let mut src = self.inner.source();
        while let Some(s) = src {
            write!(f, ": {s}")?;
            src = s.source();
        }
        Ok(())
    }
}

impl<A: fmt::Debug> fmt::Debug for Error<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self} ({:?})", self.action)
    }
}

macro_rules! outcomes {
    ($(
        $(#[$doc:meta])* $alias:ident = $action:ident { $($variant:ident => $ctor:ident: $vdoc:literal),+ $(,)? }
    )*) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
        pub enum $action {
            #[default]
            $(#[doc = $vdoc] $variant),+
        }

        #[doc = concat!("An error carrying a [`", stringify!($action), "`].")]
        pub type $alias = Error<$action>;

        impl Error<$action> {
            $(
                #[doc = $vdoc]
                pub fn $ctor(e: impl Into<BoxError>) -> Error<$action> {
                    Error::new($action::$variant, e)
                }
            )+
        }
    )*};
}

// One line per role: the outcomes, default first, each with what the runtime does.
outcomes! {
    /// After a `build` fails, for any role.
    BuildError = BuildAction { Retry => retry: "Build again after a backoff (engines' and sinks' events wait in their queue).", Stop => stop: "The job cannot work as configured: it stays stopped. For an engine or a sink at start-up, the agent does not start." }
    /// After a source's `poll` fails.
    SourceError = SourceAction { Retry => retry: "Counted and logged; polled again at the next interval.", Restart => restart: "The instance is broken: rebuilt after a backoff.", Stop => stop: "The job stops for good; the rest of the agent goes on." }
    /// After a service's `run` returns an error.
    ServiceError = ServiceAction { Restart => restart: "Rebuilt and run again after a backoff.", Stop => stop: "The job stops for good." }
    /// After an engine's `process` or `beat` fails.
    EngineError = EngineAction { Skip => skip: "The event (or the beat) is skipped: whatever the call pushed is dropped and counted; the next event is processed as usual.", Restart => restart: "Skipped as above, and the engine is rebuilt (its state is lost)." }
    /// After a sink's `prepare` or `send` fails.
    SinkError = SinkAction { Retry => retry: "Tried again after a backoff (until the sink's `retry_for`).", GiveUp => give_up: "This batch can never succeed: it is given up and counted; the next one goes on. (For `prepare`: the sink goes on unprepared.)", Stop => stop: "The sink cannot work: it stops; what reaches it from then on is dropped and counted (a disk buffer keeps what it holds)." }
}

/// The result of a plugin call; a source's error unless told otherwise.
pub type Result<T = (), E = SourceError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_convert_with_their_roles_default_and_keep_their_outcome() {
        let e: SourceError = "boom".into();
        assert_eq!(e.action(), SourceAction::Retry);
        let e: EngineError = std::io::Error::other("disk").into();
        assert_eq!((e.to_string().as_str(), e.action()), ("disk", EngineAction::Skip));
        assert_eq!(SinkError::give_up("no").action(), SinkAction::GiveUp);
        assert_eq!(ServiceError::from("x").action(), ServiceAction::Restart);
        let b = SourceError::stop("bad key").with(BuildAction::Stop);
        assert_eq!((b.action(), b.to_string().as_str()), (BuildAction::Stop, "bad key"));
    }
}
