//! How a command failed, which decides the process's exit code.

/// How a command failed: 2 for bad usage or configuration, 1 for a failure while running.
#[derive(Debug)]
pub enum Failure {
    /// Bad usage or configuration: exit 2.
    Usage(anyhow::Error),
    /// Something failed while running: exit 1.
    Runtime(anyhow::Error),
}

impl Failure {
    /// The process's exit code.
    pub fn code(&self) -> u8 {
        match self {
            Failure::Usage(_) => 2,
            Failure::Runtime(_) => 1,
        }
    }

    /// The error, whatever the kind.
    pub fn error(&self) -> &anyhow::Error {
        let (Failure::Usage(e) | Failure::Runtime(e)) = self;
        e
    }
}
