//! Golden files of the CLI's output (`cli/tests/golden/`), shared by the test files that compare with them
//! (`mod golden_file;`).

use std::path::Path;

/// Compares `actual` with the golden file `name` (or rewrites it under UPDATE_GOLDEN=1).
pub fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("missing golden file {}", path.display()));
    assert_eq!(actual, expected, "output differs from {}", path.display());
}
