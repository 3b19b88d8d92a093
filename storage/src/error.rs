use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("rocksdb: {0}")]
    RocksDb(#[from] rocksdb::Error),
    #[error("corrupt data in store: {0}")]
    Corrupt(String),
    #[error(
        "the store at {path} has on-disk format version {found}; this build of rewind reads \
         version {supported}. Use a build that matches the store, or point --data-dir at a new directory"
    )]
    UnsupportedVersion { path: PathBuf, found: u32, supported: u32 },
    #[error("the directory {0} holds a RocksDB database that is not a rewind store (no format version)")]
    NotARewindStore(PathBuf),
    #[error("i/o on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("the store is shutting down")]
    ShuttingDown,
}
