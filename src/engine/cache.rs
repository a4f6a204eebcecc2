//! Scores by input text, least recently used first out.

use std::collections::HashMap;

use crate::scoring::Scored;

pub struct ScoreCache {
    capacity: usize,
    clock: u64,
    entries: HashMap<(String, String), (Scored, u64)>,
}

impl ScoreCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            clock: 0,
            entries: HashMap::new(),
        }
    }

    pub fn get(&mut self, prompt: &str, response: &str) -> Option<Scored> {
        self.clock += 1;
        let clock = self.clock;
        // Owned key for the lookup: inputs are short next to a forward pass.
        let e = self
            .entries
            .get_mut(&(prompt.to_string(), response.to_string()))?;
        e.1 = clock;
        Some(e.0.clone())
    }

    pub fn put(&mut self, prompt: &str, response: &str, scored: Scored) {
        if self.capacity == 0 {
            return;
        }
        self.clock += 1;
        self.entries.insert(
            (prompt.to_string(), response.to_string()),
            (scored, self.clock),
        );
        if self.entries.len() > self.capacity {
            if let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| k.clone())
            {
                self.entries.remove(&oldest);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: f32) -> Scored {
        Scored {
            gating: None,
            tokens: 1,
            truncated: false,
            scores: vec![x],
            warnings: vec![],
        }
    }

    #[test]
    fn evicts_the_least_recently_used() {
        let mut c = ScoreCache::new(2);
        c.put("p", "a", s(1.0));
        c.put("p", "b", s(2.0));
        assert_eq!(c.get("p", "a").unwrap().scores, vec![1.0]);
        c.put("p", "c", s(3.0));
        assert!(c.get("p", "b").is_none(), "b was least recently used");
        assert!(c.get("p", "a").is_some());
        assert!(c.get("p", "c").is_some());
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn prompt_and_response_are_separate_keys() {
        let mut c = ScoreCache::new(4);
        c.put("ab", "c", s(1.0));
        assert!(c.get("a", "bc").is_none());
    }
}
