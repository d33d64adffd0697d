//! `--name value` options.

use std::collections::HashMap;

/// The options of one run.
pub struct Args(HashMap<String, String>);

impl Args {
    /// Reads `--name value` pairs (`-n` is `--n`).
    pub fn parse(argv: &[String]) -> Result<Self, String> {
        let mut map = HashMap::new();
        let mut it = argv.iter();
        while let Some(key) = it.next() {
            let name = key
                .strip_prefix("--")
                .or_else(|| key.strip_prefix('-'))
                .ok_or_else(|| format!("expected an option, got {key:?}"))?;
            let value = it.next().ok_or_else(|| format!("{key} needs a value"))?;
            map.insert(name.to_owned(), value.clone());
        }
        Ok(Args(map))
    }

    /// A text option.
    pub fn str(&self, name: &str, default: &str) -> String {
        self.0
            .get(name)
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    }

    /// A whole-number option.
    pub fn num(&self, name: &str, default: u64) -> Result<u64, String> {
        match self.0.get(name) {
            None => Ok(default),
            Some(v) => v
                .replace('_', "")
                .parse()
                .map_err(|_| format!("--{name} {v:?}: expected a whole number")),
        }
    }

    /// `--pids 1,2,3`: the server's processes, for memory and CPU.
    pub fn pids(&self) -> Result<Vec<u32>, String> {
        let text = self.str("pids", "");
        text.split(',')
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.trim()
                    .parse()
                    .map_err(|_| format!("--pids: bad pid {p:?}"))
            })
            .collect()
    }
}
