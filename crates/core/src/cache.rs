//! A least-recently-used cache bounded by the bytes its entries weigh, not by their number:
//! one state of a big room weighs as much as thousands of a small room's.

use std::hash::Hash;
use std::sync::Mutex;

use crate::server::lock;

pub(crate) struct Weighted<K: Hash + Eq, V> {
    inner: Mutex<(lru::LruCache<K, V>, usize)>,
    budget: usize,
    weigh: fn(&K, &V) -> usize,
}

impl<K: Hash + Eq, V: Clone> Weighted<K, V> {
    /// A cache of at most `budget` bytes as `weigh` counts them.
    pub fn new(budget: usize, weigh: fn(&K, &V) -> usize) -> Self {
        Weighted { inner: Mutex::new((lru::LruCache::unbounded(), 0)), budget, weigh }
    }

    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        lock(&self.inner).0.get(key).cloned()
    }

    /// Keeps `value`; the least recently used entries go until the cache is within its budget.
    /// The newest stays even if it alone is over the budget.
    pub fn insert(&self, key: K, value: V) {
        let weight = (self.weigh)(&key, &value);
        let mut guard = lock(&self.inner);
        let (cache, bytes) = &mut *guard;
        *bytes += weight;
        if let Some((old_key, old)) = cache.push(key, value) {
            *bytes -= (self.weigh)(&old_key, &old);
        }
        while *bytes > self.budget && cache.len() > 1 {
            if let Some((k, v)) = cache.pop_lru() {
                *bytes -= (self.weigh)(&k, &v);
            }
        }
    }

    /// The bytes held, as `weigh` counts them.
    #[cfg(test)]
    pub fn weight(&self) -> usize {
        lock(&self.inner).1
    }
}

#[cfg(test)]
mod tests {
    use super::Weighted;

    /// The cache holds at most its budget, whatever the number of entries, dropping the least
    /// recently used; a single entry over the budget is still kept.
    #[test]
    fn bounded_by_weight() {
        let cache: Weighted<u32, Vec<u8>> = Weighted::new(1000, |_, v| v.len());
        for k in 1..=4 {
            cache.insert(k, vec![0; 250]);
        }
        assert!(cache.get(&1).is_some(), "four quarters fit");
        cache.insert(5, vec![0; 250]);
        assert!(cache.get(&2).is_none(), "the least recently used (2; 1 was just read) goes");
        assert!(cache.get(&1).is_some() && cache.get(&5).is_some());
        assert!(cache.weight() <= 1000);
        cache.insert(6, vec![0; 1001]);
        assert!(cache.get(&6).is_some() && cache.get(&1).is_none());
        cache.insert(6, vec![0; 10]);
        assert_eq!(cache.weight(), 10, "a replaced entry's weight is given back");
    }
}
