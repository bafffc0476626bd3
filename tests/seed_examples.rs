//! The seed examples, run as tests against the embedded server.

#[path = "../examples/seed_download.rs"]
mod seed_download;
#[path = "../examples/seed_upload.rs"]
mod seed_upload;

use dugong_harness::{pattern, LoopbackServer};

#[test]
fn seed_download_writes_every_document_intact() {
    let server = LoopbackServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let documents = seed_download::documents();
    seed_download::download(server.port(), &documents, dir.path()).expect("download");
    for doc in &documents {
        let n: usize = doc.trim_start_matches("/bytes/").parse().expect("size");
        let got = std::fs::read(dir.path().join(doc[1..].replace('/', "_"))).expect("file");
        assert_eq!(got, pattern(n), "{doc}");
    }
    assert_eq!(server.connections_accepted(), 1);
}

#[test]
fn seed_upload_sends_every_byte_with_sendfile_cofun_and_by_hand() {
    let server = LoopbackServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let files = seed_upload::make_files(dir.path(), 12).expect("files");
    let want: Vec<(String, u64)> = files
        .iter()
        .map(|f| {
            let name = f.file_name().expect("name").to_string_lossy().into_owned();
            (
                format!("/{name}"),
                std::fs::metadata(f).expect("meta").len(),
            )
        })
        .collect();
    assert_eq!(
        seed_upload::upload(server.port(), &files).expect("cofun upload"),
        want
    );
    assert_eq!(
        seed_upload::upload_by_hand(server.port(), &files).expect("by hand"),
        want
    );
    assert_eq!(server.connections_accepted(), 2);
}
