//! Every query is bounded, and each bound answers its own error rather than harming the server.

use std::time::Duration;

use rewind_sql::{Engine, Limits, SqlError};

use crate::support::{runtime, shop_store};

fn engine_with(store: &std::sync::Arc<rewind_storage::Store>, limits: Limits) -> Engine {
    Engine::new(store.clone(), limits).unwrap()
}

#[test]
fn time_memory_rows_and_concurrency_each_answer_their_error() {
    let shop = shop_store();
    let rt = runtime();
    let run = |e: &Engine, sql: &str| rt.block_on(e.run(sql, false)).map(|_| ());

    let slow = engine_with(&shop.store, Limits { timeout: Duration::from_millis(300), ..Default::default() });
    let started = std::time::Instant::now();
    let e = run(&slow, "SELECT count(*) FROM generate_series(1, 100000000000)").unwrap_err();
    assert!(matches!(e, SqlError::Timeout(300)), "{e}");
    assert_eq!(e.status(), 408);
    assert!(started.elapsed() < Duration::from_secs(5));

    let small = engine_with(&shop.store, Limits { memory_bytes: 2 << 20, ..Default::default() });
    let e = run(&small, "SELECT s.span_id, t.span_id FROM spans s JOIN spans t ON s.service = t.service ORDER BY 1")
        .unwrap_err();
    assert!(matches!(e, SqlError::Memory { .. }), "{e}");
    assert_eq!(e.status(), 413);
    // The same engine answers the next, smaller question.
    run(&small, "SELECT count(*) FROM spans").unwrap();

    let few = engine_with(&shop.store, Limits { max_rows: 10, ..Default::default() });
    let e = run(&few, "SELECT span_id FROM spans").unwrap_err();
    assert!(matches!(e, SqlError::TooManyRows(10)), "{e}");
    run(&few, "SELECT span_id FROM spans LIMIT 10").unwrap();

    let one =
        engine_with(&shop.store, Limits { concurrency: 1, timeout: Duration::from_secs(10), ..Default::default() });
    let busy = rt.block_on(async {
        let long = one.run("SELECT count(*) FROM generate_series(1, 100000000000)", false);
        let second = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            one.run("SELECT 1", false).await
        };
        tokio::select! {
            _ = long => panic!("the long query finished first"),
            r = second => r,
        }
    });
    let e = busy.unwrap_err();
    assert!(matches!(e, SqlError::Busy(1)), "{e}");
    assert_eq!(e.status(), 503);
}
