//! Code-list lookup.

use std::borrow::Borrow;

/// A fixed list of valid codes (CVX numbers, state abbreviations, …), searched by binary search.
///
/// The slice must be sorted ascending without duplicates; [`CodeList::is_well_formed`] checks
/// that and belongs in a unit test of every list a module ships (or in the build script that
/// generates it).
#[derive(Debug, Clone, Copy)]
pub struct CodeList<T: 'static> {
    sorted: &'static [T],
}

impl<T: Ord> CodeList<T> {
    pub const fn new(sorted: &'static [T]) -> Self {
        Self { sorted }
    }

    /// `code` may be a borrowed form of `T` (`&str` for a list of `&'static str`).
    pub fn contains<Q: Ord + ?Sized>(&self, code: &Q) -> bool
    where
        T: Borrow<Q>,
    {
        self.position(code).is_some()
    }

    /// The list entry equal to `code`, borrowed for `'static` (useful to turn a transient
    /// normalised value into static text).
    pub fn get<Q: Ord + ?Sized>(&self, code: &Q) -> Option<&'static T>
    where
        T: Borrow<Q>,
    {
        let sorted: &'static [T] = self.sorted;
        self.position(code).and_then(|i| sorted.get(i))
    }

    fn position<Q: Ord + ?Sized>(&self, code: &Q) -> Option<usize>
    where
        T: Borrow<Q>,
    {
        self.sorted
            .binary_search_by(|probe| probe.borrow().cmp(code))
            .ok()
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    pub fn codes(&self) -> &'static [T] {
        self.sorted
    }

    /// Sorted ascending, no duplicates.
    pub fn is_well_formed(&self) -> bool {
        self.sorted.windows(2).all(|pair| pair[0] < pair[1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: CodeList<u16> = CodeList::new(&[3, 8, 20, 998]);

    #[test]
    fn finds_members_only() {
        assert!(LIST.is_well_formed());
        assert!(LIST.contains(&20));
        assert!(!LIST.contains(&21));
        assert_eq!(LIST.get(&998), Some(&998));
        assert_eq!(LIST.len(), 4);
        assert!(!CodeList::<u16>::new(&[2, 1]).is_well_formed());
        assert!(!CodeList::<u16>::new(&[1, 1]).is_well_formed());
    }
}
