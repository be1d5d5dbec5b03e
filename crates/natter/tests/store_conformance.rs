//! The SQLite store against the store conformance suite
//! (`natter::store::conformance`), which every store must pass.

use std::sync::{Arc, Mutex};

use natter::store::Store;
use natter::store::sqlite::SqliteStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_passes_the_store_conformance_suite() {
    // Each test gets a fresh data folder, kept until the suite ends.
    let folders: Arc<Mutex<Vec<tempfile::TempDir>>> = Arc::default();
    natter::store::conformance::run_all(|| {
        let folders = folders.clone();
        async move {
            let folder = tempfile::tempdir().unwrap();
            let store = SqliteStore::open(folder.path()).expect("open a fresh store");
            folders.lock().unwrap().push(folder);
            Arc::new(store) as Arc<dyn Store>
        }
    })
    .await;
}
