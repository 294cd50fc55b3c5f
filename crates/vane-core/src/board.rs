//! Boards as a plugin sees them (the Telemetry Agent's `GetOrCreateBoard`
//! and `PostFlowUpdate`): a plugin gets or creates a board from a template
//! it ships, giving it a name and a prefix, and posts updates to the
//! board's flows by their template tags. A post returns at once; the board
//! keeps the last update of each flow until its submission interval, then
//! shows it. The `board` sink provides boards; without one in the config,
//! [`crate::context::Context::board`] says so.

use std::sync::{Arc, RwLock};

/// What getting a board or posting to one can meet.
#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error("no board sink in the config: add `- {{ id: board, plugin: board }}` under sinks")]
    NoBoards,
    /// The template does not read; the text names the place (`origin:line:column`).
    #[error("{0}")]
    Template(String),
    #[error("board {board:?} has no flow tagged {tag:?} (its tags: {tags})")]
    NoFlow { board: String, tag: String, tags: String },
    #[error("flow {flow:?} already belongs to board {other:?}; give this one another prefix")]
    Taken { flow: String, other: String },
    #[error("cannot save board {slug}: {source}")]
    Save { slug: String, source: std::io::Error },
}

/// What provides boards (the `board` sink), as the runtime passes it on.
pub trait Boards: Send + Sync + 'static {
    /// Gets board `name` or creates it from `template` (a board template
    /// in YAML, read as coming from `origin`), its flows tagged `prefix` +
    /// the template's tag. `owner` (the job) is shown as the board's owner;
    /// an existing board keeps its flows' data and takes the template's
    /// layout. The error says what is wrong, with its position.
    fn open(&self, name: &str, prefix: &str, template: &str, origin: &str, owner: &str) -> Result<Board, BoardError>;

    /// Keeps `data` as flow `flow`'s next update (the last one before the
    /// board's submission interval wins). False when no board has the flow.
    fn post(&self, flow: &str, data: serde_json::Value) -> bool;
}

/// One board, as its plugin holds it. Cheap to clone.
#[derive(Clone)]
pub struct Board {
    name: Arc<str>,
    prefix: Arc<str>,
    tags: Arc<[String]>,
    boards: Arc<dyn Boards>,
}

impl std::fmt::Debug for Board {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Board").field("name", &self.name).field("prefix", &self.prefix).finish()
    }
}

impl Board {
    /// What a [`Boards`] hands back: the board's name, prefix, the tags of its
    /// template's flows, and where posts go.
    pub fn new(name: &str, prefix: &str, tags: Vec<String>, boards: Arc<dyn Boards>) -> Board {
        Board { name: name.into(), prefix: prefix.into(), tags: tags.into(), boards }
    }

    /// The same board, its posts sent through `boards`.
    pub(crate) fn through(self, boards: Arc<dyn Boards>) -> Board {
        Board { boards, ..self }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The template's flow tags.
    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    /// The flow's full tag: the board's prefix and the template's tag.
    pub fn flow(&self, tag: &str) -> String {
        format!("{}{tag}", self.prefix)
    }

    /// Posts `data` (the widget variant's fields, e.g. `{"value": 42}`) to
    /// the flow the template tags `tag`; returns at once. An error names a
    /// tag the template does not have.
    pub fn post(&self, tag: &str, data: serde_json::Value) -> Result<(), BoardError> {
        if !self.tags.iter().any(|t| t == tag) {
            return Err(BoardError::NoFlow {
                board: self.name.to_string(),
                tag: tag.into(),
                tags: self.tags.join(", "),
            });
        }
        self.boards.post(&self.flow(tag), data);
        Ok(())
    }
}

/// Where the runtime keeps the provider of boards: empty until a `board`
/// sink is built, then it (and the job it is), for every job of the agent.
/// Boards handed out post through it, so that when a reload rebuilds the
/// `board` sink, what jobs post reaches its successor.
#[derive(Default)]
pub struct Desk(RwLock<Option<(String, Arc<dyn Boards>)>>);

impl Desk {
    /// Offers `job`'s `boards` to every job; false when another job's are
    /// offered. The same job offers again when it is rebuilt.
    pub fn offer(&self, job: &str, boards: Arc<dyn Boards>) -> bool {
        let mut d = self.0.write().expect("not poisoned");
        match &*d {
            Some((owner, _)) if owner != job => false,
            _ => {
                *d = Some((job.to_owned(), boards));
                true
            }
        }
    }

    pub fn get(&self) -> Option<Arc<dyn Boards>> {
        self.0.read().expect("not poisoned").as_ref().map(|(_, b)| b.clone())
    }
}

impl Boards for Desk {
    fn open(&self, name: &str, prefix: &str, template: &str, origin: &str, owner: &str) -> Result<Board, BoardError> {
        self.get().ok_or(BoardError::NoBoards)?.open(name, prefix, template, origin, owner)
    }

    fn post(&self, flow: &str, data: serde_json::Value) -> bool {
        self.get().is_some_and(|b| b.post(flow, data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Keeps what is posted to it.
    #[derive(Default)]
    struct Kept(Mutex<Vec<String>>);
    impl Boards for Kept {
        fn open(&self, name: &str, prefix: &str, _: &str, _: &str, _: &str) -> Result<Board, BoardError> {
            Err(BoardError::Template(format!("{name} {prefix}")))
        }
        fn post(&self, flow: &str, _: serde_json::Value) -> bool {
            self.0.lock().unwrap().push(flow.to_owned());
            true
        }
    }

    #[test]
    fn one_job_provides_the_boards_and_a_rebuilt_one_takes_over_what_is_posted() {
        let desk = Arc::new(Desk::default());
        let (first, second) = (Arc::new(Kept::default()), Arc::new(Kept::default()));
        assert!(desk.offer("board", first.clone()));
        assert!(!desk.offer("other", Arc::new(Kept::default())), "another job's boards are refused");
        // A board handed out before the rebuild posts through the desk.
        let board = Board::new("b", "p.", vec!["n".into()], first.clone()).through(desk.clone());
        board.post("n", serde_json::json!(1)).unwrap();
        assert!(desk.offer("board", second.clone()), "the same job, rebuilt, offers again");
        board.post("n", serde_json::json!(2)).unwrap();
        assert_eq!(*first.0.lock().unwrap(), ["p.n"]);
        assert_eq!(*second.0.lock().unwrap(), ["p.n"]);
        assert!(matches!(board.post("x", serde_json::json!(3)), Err(BoardError::NoFlow { .. })));
    }
}
