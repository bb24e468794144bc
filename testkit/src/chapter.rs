//! A place to run a chapter's transcripts as a reader would: a folder laid out like the
//! repository (`scripts/` is the real one, `target/release/` holds the debug binaries under
//! test), with its own `boxes/`, and ports the system picked in place of the chapter's
//! 60000–60002. The start scripts run as they are, told by `MINIBOX_BIN_DIR` not to build.
//! See [`crate::transcript`] for how the output is compared.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::transcript::{bash, blocks, Block, Checker, Prompt, Step};
use crate::{Proc, TempDir};

/// The longest one step may take.
const STEP_LIMIT: Duration = Duration::from_secs(120);

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A reader's folder, for one chapter.
pub struct World {
    /// Holds it all; removed on drop.
    pub tmp: TempDir,
    /// The folder the reader works in (the "repository").
    pub root: PathBuf,
    /// The environment of every command.
    pub env: Vec<(String, String)>,
    /// Compares outputs with the chapter.
    pub checker: Checker,
    /// The chapter's transcripts.
    pub blocks: Vec<Block>,
    /// `$?` of the last bash step.
    status: i32,
}

impl World {
    /// A folder for the chapter at `chapter` (relative to the repository), running the
    /// binaries in `bin_dir`.
    ///
    /// # Panics
    /// If the folder cannot be laid out or the chapter read.
    pub fn new(chapter: &str, bin_dir: &Path) -> World {
        let tmp = crate::tempdir();
        let root = tmp.path().join("minibox");
        std::fs::create_dir_all(root.join("target")).expect("a folder");
        let link = |from: &Path, to: &Path| {
            std::os::unix::fs::symlink(from, to).expect("a symbolic link");
        };
        link(&repo().join("scripts"), &root.join("scripts"));
        link(bin_dir, &root.join("target/release"));
        let text = std::fs::read_to_string(repo().join(chapter)).expect("the chapter");
        let mut checker = Checker::new(Path::new(chapter), &root.join("boxes"));
        let mut env = vec![
            ("MINIBOX_BIN_DIR".to_string(), bin_dir.display().to_string()),
            ("TZ".to_string(), "UTC".to_string()),
        ];
        for (var, doc) in [
            ("MINIBOX_ADDR", 60000),
            ("MINIBOX_BOX1_ADDR", 60001),
            ("MINIBOX_BOX2_ADDR", 60002),
        ] {
            let port = crate::free_port();
            checker.port(port, doc);
            env.push((var.to_string(), format!("127.0.0.1:{port}")));
        }
        World {
            tmp,
            root,
            env,
            checker,
            blocks: blocks(&text),
            status: 0,
        }
    }

    /// The test's address for the chapter's `127.0.0.1:PORT`.
    pub fn addr(&self, doc: &str) -> String {
        self.checker.command(doc)
    }

    /// Starts a long-running command (a start script, say) in the background, once it has
    /// announced its port; its stdin stays open and silent.
    ///
    /// # Panics
    /// If it does not announce a port.
    pub fn start(&self, command: &str) -> Proc {
        let script = format!(
            "cd '{}' && exec {}",
            self.root.display(),
            self.checker.command(command)
        );
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        Proc::start_with("bash", &["-c", &script], &env)
    }

    /// Runs a bash step and compares its output with the chapter.
    pub fn bash_step(&mut self, step: &Step) {
        let command = self.checker.command(&step.input);
        let (out, status) = bash(&self.root, &self.env, &command, self.status, STEP_LIMIT);
        self.status = status;
        self.checker.step(step, &out);
    }

    /// Runs a shell step by piping its line into `shell` (a bash command line: a start script,
    /// or a binary with its arguments), and compares the output with the chapter.
    pub fn shell_step(&mut self, step: &Step, shell: &str) {
        let mut env = self.env.clone();
        env.push(("MINIBOX_LINE".to_string(), step.input.clone()));
        let command = format!(
            "printf '%s\\n' \"$MINIBOX_LINE\" | {}",
            self.checker.command(shell)
        );
        let (out, _) = bash(&self.root, &env, &command, 0, STEP_LIMIT);
        self.checker.step(step, &out);
    }

    /// Runs every step of block `i`: bash steps with bash, shell steps through `shell`.
    pub fn run_block(&mut self, i: usize, shell: &str) {
        let steps = self.blocks[i].steps.clone();
        for step in &steps {
            match step.prompt {
                Prompt::Bash => self.bash_step(step),
                Prompt::Shell => self.shell_step(step, shell),
            }
        }
    }

    /// Panics with every step whose output differs from the chapter.
    ///
    /// # Panics
    /// See [`Checker::finish`].
    pub fn finish(self) {
        self.checker.finish();
    }
}
