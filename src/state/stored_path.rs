//! Paths as the Python tool stores and reads them: it keeps `str(Path(p))`, which drops a
//! trailing slash, repeated slashes and `.` components (but keeps `..`, which only the file
//! system can resolve), and it treats an empty stored path as no path at all
//! (`if path_str and not Path(path_str).exists()`). mamfast stores and checks paths the same
//! way, so neither tool calls a path missing that the other finds.

/// `str(pathlib.PurePosixPath(text))`: the spelling the Python tool stores.
pub fn python_path(text: &str) -> String {
    // POSIX lets exactly two leading slashes mean something else than one, so Python keeps
    // them; one or three and more become one.
    let root = if text.starts_with("//") && !text.starts_with("///") {
        "//"
    } else if text.starts_with('/') {
        "/"
    } else {
        ""
    };
    let parts: Vec<&str> = text
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect();
    match (root, parts.is_empty()) {
        ("", true) => ".".to_string(),
        (root, _) => format!("{root}{}", parts.join("/")),
    }
}

/// A recorded path, or `None` for a missing, null or empty one: the Python tool checks no
/// path there, so neither does mamfast.
pub fn recorded(value: Option<&str>) -> Option<&str> {
    value.filter(|text| !text.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each case was checked against `str(pathlib.PurePosixPath(case))` of Python 3.11.
    #[test]
    fn paths_are_spelled_as_python_spells_them() {
        for (given, python) in [
            ("/x/book.torrent/", "/x/book.torrent"),
            ("/x//y///z", "/x/y/z"),
            ("/x/./y/.", "/x/y"),
            ("/x/../y", "/x/../y"),
            ("//x/y", "//x/y"),
            ("///x/y", "/x/y"),
            ("/", "/"),
            ("//", "//"),
            ("///", "/"),
            ("a/b/", "a/b"),
            ("./a", "a"),
            (".", "."),
            ("", "."),
            ("/srv/Bücher/ü b/", "/srv/Bücher/ü b"),
        ] {
            assert_eq!(python_path(given), python, "{given:?}");
        }
    }

    #[test]
    fn an_empty_path_is_no_path() {
        assert_eq!(recorded(Some("")), None);
        assert_eq!(recorded(None), None);
        assert_eq!(recorded(Some("/x")), Some("/x"));
    }
}
