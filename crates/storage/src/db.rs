//! The database handle: tables, reads, scans and atomic durable batches.

use std::path::Path;
use std::sync::Arc;

use rocksdb::{
    BlockBasedOptions, BoundColumnFamily, Cache, ColumnFamilyDescriptor, DBWithThreadMode, IteratorMode, MultiThreaded,
    Options, WriteOptions,
};

use crate::{Error, Result};

/// A table: a RocksDB column family, named once in the code that owns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Table(pub &'static str);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Backward,
}

/// Writes that land together or not at all.
#[derive(Default)]
pub struct Batch {
    ops: Vec<Op>,
}

enum Op {
    Put(Table, Vec<u8>, Vec<u8>),
    Delete(Table, Vec<u8>),
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn put(&mut self, table: Table, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> &mut Self {
        self.ops.push(Op::Put(table, key.into(), value.into()));
        self
    }

    pub fn delete(&mut self, table: Table, key: impl Into<Vec<u8>>) -> &mut Self {
        self.ops.push(Op::Delete(table, key.into()));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }
}

type Rocks = DBWithThreadMode<MultiThreaded>;

/// A key and its value, as a scan yields them.
pub type Entry = (Box<[u8]>, Box<[u8]>);

/// An open database. Cheap to clone; safe to share between threads.
#[derive(Clone)]
pub struct Db {
    rocks: Arc<Rocks>,
    tables: Arc<[Table]>,
}

impl Db {
    /// Opens (creating if needed) the database in `dir` with these tables. Tables that exist on
    /// disk but are not named are kept, untouched.
    pub fn open(dir: &Path, tables: &[Table]) -> Result<Self> {
        // Bounded memory for a small server, however many tables: one block cache shared by
        // all of them, small write buffers, and a cap on all memtables together (without it,
        // RocksDB's defaults allow 64 MiB per table, twice over).
        let cache = Cache::new_lru_cache(32 << 20);
        let mut table_opts = BlockBasedOptions::default();
        table_opts.set_block_cache(&cache);
        let mut cf_opts = Options::default();
        cf_opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        cf_opts.set_write_buffer_size(8 << 20);
        cf_opts.set_block_based_table_factory(&table_opts);
        let mut opts = cf_opts.clone();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_db_write_buffer_size(64 << 20);
        opts.set_max_open_files(512);
        let mut names: Vec<String> = Rocks::list_cf(&opts, dir).unwrap_or_default();
        for t in tables {
            if !names.iter().any(|n| n == t.0) {
                names.push(t.0.to_owned());
            }
        }
        let cfs = names.iter().map(|n| ColumnFamilyDescriptor::new(n, cf_opts.clone()));
        let rocks = Rocks::open_cf_descriptors(&opts, dir, cfs)?;
        Ok(Db { rocks: Arc::new(rocks), tables: tables.into() })
    }

    fn cf(&self, table: Table) -> Result<Arc<BoundColumnFamily<'_>>> {
        if !self.tables.contains(&table) {
            return Err(Error::UnknownTable(table.0));
        }
        self.rocks.cf_handle(table.0).ok_or(Error::UnknownTable(table.0))
    }

    pub fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.rocks.get_cf(&self.cf(table)?, key)?)
    }

    /// Applies `batch` atomically; when this returns `Ok`, the batch is durable.
    pub fn write(&self, batch: Batch) -> Result<()> {
        let mut wb = rocksdb::WriteBatch::default();
        for op in &batch.ops {
            match op {
                Op::Put(t, k, v) => wb.put_cf(&self.cf(*t)?, k, v),
                Op::Delete(t, k) => wb.delete_cf(&self.cf(*t)?, k),
            }
        }
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        Ok(self.rocks.write_opt(wb, &opts)?)
    }

    /// Entries from `from` (inclusive) onwards in `direction`, while the key starts with
    /// `prefix`. Backward from a key that is absent starts at the greatest key below it.
    pub fn scan<'a>(
        &'a self,
        table: Table,
        prefix: &'a [u8],
        from: &[u8],
        direction: Direction,
    ) -> Result<impl Iterator<Item = Result<Entry>> + use<'a>> {
        let mode = match direction {
            Direction::Forward => IteratorMode::From(from, rocksdb::Direction::Forward),
            Direction::Backward => IteratorMode::From(from, rocksdb::Direction::Reverse),
        };
        let iter = self.rocks.iterator_cf(&self.cf(table)?, mode);
        Ok(iter
            .map(|r| r.map_err(Error::from))
            .take_while(move |r| r.as_ref().map_or(true, |(k, _)| k.starts_with(prefix))))
    }

    /// All entries whose key starts with `prefix`, in key order.
    pub fn scan_prefix<'a>(
        &'a self,
        table: Table,
        prefix: &'a [u8],
    ) -> Result<impl Iterator<Item = Result<Entry>> + 'a> {
        self.scan(table, prefix, prefix, Direction::Forward)
    }
}
