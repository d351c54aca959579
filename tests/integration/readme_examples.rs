//! The README's examples are real output: each block marked `<!-- example: FILE -->` must
//! appear, line for line, in that transcript, which the transcript tests run.

use std::path::Path;

#[test]
fn readme_examples_match_their_transcripts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut checked = 0;
    let mut rest = readme.as_str();
    while let Some(at) = rest.find("<!-- example: ") {
        rest = &rest[at + "<!-- example: ".len()..];
        let (file, after) = rest.split_once(" -->").expect("example marker is closed");
        let block = after
            .split_once("```console\n")
            .and_then(|(_, b)| b.split_once("```"))
            .map(|(block, _)| block)
            .unwrap_or_else(|| panic!("no console block after the marker for {file}"));
        let transcript = std::fs::read_to_string(root.join(file))
            .unwrap_or_else(|e| panic!("README names {file}: {e}"));
        assert!(
            transcript.contains(block),
            "README example from {file} no longer matches it:\n{block}"
        );
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} README examples found");
}
