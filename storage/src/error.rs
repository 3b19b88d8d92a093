use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("rocksdb: {0}")]
    RocksDb(#[from] rocksdb::Error),
    /// What is corrupt and where: "partition 12 segment 40 column 7 page 0: bad varint".
    #[error("corrupt data in store: {0}")]
    Corrupt(String),
    #[error(
        "the store at {path} has on-disk format version {found}; this build of rewind reads \
         version {supported}. Use a build that matches the store, or point --data-dir at a new directory"
    )]
    UnsupportedVersion { path: PathBuf, found: u32, supported: u32 },
    #[error("the directory {0} holds a RocksDB database that is not a rewind store (no format version)")]
    NotARewindStore(PathBuf),
    /// RocksDB's lock on the directory is held: another process (a `rewind serve` or `demo` still
    /// running, or still shutting down) has the store open.
    #[error(
        "the store at {path} is open in another process (another rewind, or one still shutting \
         down): stop it, or point --data-dir elsewhere ({detail})"
    )]
    InUse { path: PathBuf, detail: String },
    #[error("i/o on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("the store is shutting down")]
    ShuttingDown,
    /// Writes are held back before RocksDB itself runs out of space mid-write.
    #[error("the disk holding {path} is nearly full: {free} bytes free, below the {reserve} bytes kept in reserve")]
    DiskFull { path: PathBuf, free: u64, reserve: u64 },
    /// A read met a partition that retention dropped while the read ran.
    #[error("partition {0} was dropped")]
    PartitionDropped(u64),
    /// A failure injected by a test (see `failpoint`).
    #[error("injected i/o error at {0}")]
    Injected(&'static str),
    #[error("internal error: {0}")]
    Internal(String),
    /// The read ran past its deadline or was cancelled (`interrupt`).
    #[error("the read was stopped: it ran past its deadline or was cancelled")]
    Interrupted,
}

impl StorageError {
    /// Names where corrupt data was found; other errors pass through unchanged.
    pub fn within(self, place: impl FnOnce() -> String) -> Self {
        match self {
            StorageError::Corrupt(what) => StorageError::Corrupt(format!("{}: {what}", place())),
            other => other,
        }
    }
}
