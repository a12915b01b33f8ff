//! Environment variables: `KEY=VALUE` strings a process inherits from its
//! parent (through its info page) and passes on to the processes it starts.
//! The first process starts with `PWD=/`.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::info_page;

static VARIABLES: spin::Mutex<Option<Vec<(String, String)>>> = spin::Mutex::new(None);

fn with<T>(action: impl FnOnce(&mut Vec<(String, String)>) -> T) -> T {
    let mut variables = VARIABLES.lock();
    action(variables.get_or_insert_with(|| match info_page::own() {
        Some(info) => info.environment,
        None => alloc::vec![("PWD".to_string(), "/".to_string())],
    }))
}

/// The value of `key`, if it is set.
pub fn var(key: &str) -> Option<String> {
    with(|variables| {
        variables
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.clone())
    })
}

/// Sets `key` to `value` (for this process and those it starts from now on).
pub fn set_var(key: &str, value: &str) {
    with(
        |variables| match variables.iter_mut().find(|(name, _)| name == key) {
            Some((_, old)) => *old = value.to_string(),
            None => variables.push((key.to_string(), value.to_string())),
        },
    );
}

/// Removes `key`.
pub fn remove_var(key: &str) {
    with(|variables| variables.retain(|(name, _)| name != key));
}

/// Every variable, in the order they were set.
pub fn vars() -> Vec<(String, String)> {
    with(|variables| variables.clone())
}

/// The working directory: `PWD`, or `/`.
pub fn current_dir() -> String {
    var("PWD")
        .filter(|path| path.starts_with('/'))
        .unwrap_or_else(|| "/".to_string())
}

/// `path` as an absolute path: relative paths are taken from the working
/// directory (the file tree resolves `.` and `..`).
pub fn absolute(path: &str) -> String {
    if path.starts_with('/') {
        return path.to_string();
    }
    let mut absolute = current_dir();
    if !absolute.ends_with('/') {
        absolute.push('/');
    }
    absolute.push_str(path);
    absolute
}
