/// A storage failure. The engine maps every one of them to an internal server error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database: {0}")]
    Backend(#[from] rocksdb::Error),
    #[error("unknown table {0:?}: it was not declared when the database was opened")]
    UnknownTable(&'static str),
    #[error("corrupt value in {table}: {what}")]
    Corrupt { table: &'static str, what: String },
}
