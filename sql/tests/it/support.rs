//! What the tests share: a store holding two hours of the shop workload (with a MySQL incident
//! in the first), sealed except for its last minute, on a clock the tests control.

use std::sync::Arc;

use rewind_collector::Limits;
use rewind_sql::{Engine, Limits as SqlLimits};
use rewind_storage::{EncodedBatch, ManualClock, Store, StoreConfig};
use rewind_workload::{Dependency, Incident, Shop, ShopConfig};
use tempfile::TempDir;

pub const S: u64 = 1_000_000_000;
/// The first hour of data: whole hours, so that an hour is one partition.
pub const T0: u64 = 1_790_000_000 / 3600 * 3600 * S;
pub const MINUTES: u64 = 120;

pub struct ShopStore {
    pub store: Arc<Store>,
    _dir: TempDir,
}

pub fn config(dir: &TempDir, clock: &Arc<ManualClock>) -> StoreConfig {
    let mut c = StoreConfig::new(dir.path().join("store"));
    c.sync = false;
    c.min_free_disk_bytes = 0;
    c.clock = clock.clone();
    c
}

/// Converts a shop request as the collector does and stores it.
pub fn append(store: &Store, req: rewind_agent_proto::ExportTraceServiceRequest) {
    let spans = rewind_collector::convert::convert(req, &Limits::default(), &Default::default(), u64::MAX, 0).items;
    store.append(vec![EncodedBatch::new(spans)]).unwrap();
}

/// Two hours of the shop, ten traces every ten seconds; MySQL five times slower, a third of its
/// calls failing, from minute 30 to 40. Sealed every ten minutes, but for the last minute, which
/// stays in memory (so every table is read from several segments and from memory).
pub fn shop_store() -> ShopStore {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0 + (MINUTES + 1) * 60 * S));
    let store = Store::open(config(&dir, &clock)).unwrap();
    let incident = Incident {
        start_ns: T0 + 30 * 60 * S,
        end_ns: T0 + 40 * 60 * S,
        dependency: Dependency::Mysql,
        slowdown: 5.0,
        error_share: 0.3,
    };
    let mut shop = Shop::new(ShopConfig { seed: 7, incident: Some(incident) });
    let steps = MINUTES * 6;
    for step in 0..steps {
        let at = T0 + step * 10 * S;
        append(&store, shop.request(10, at, S));
        if step % 60 == 59 {
            clock.advance(5 * S);
            store.seal().unwrap();
        }
        if step == steps - 7 {
            store.seal_all().unwrap();
        }
    }
    ShopStore { store, _dir: dir }
}

pub fn engine(store: &Arc<Store>) -> Engine {
    // One thread: answers in one order, and approximate aggregates computed the same way.
    Engine::new(store.clone(), SqlLimits { threads: 1, ..Default::default() }).unwrap()
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// An answer as text lines, cells separated by `|`, floats to three decimals.
pub fn lines(engine: &Engine, rt: &tokio::runtime::Runtime, sql: &str) -> Result<Vec<String>, rewind_sql::SqlError> {
    let rewind_sql::Output::Json(answer) = rt.block_on(engine.run(sql, false))? else { unreachable!() };
    Ok(answer
        .rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|v| match v {
                    serde_json::Value::Number(n) if n.is_f64() => format!("{:.3}", n.as_f64().unwrap()),
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => "NULL".into(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect())
}
