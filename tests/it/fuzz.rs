//! The fuzz targets' bodies (rewind_storage::fuzz, rewind_collector::fuzz) over every input kept
//! in `fuzz/seeds/` (the starting corpus) and `fuzz/regressions/` (inputs that once crashed a
//! target, kept forever): what crashed once is tested on every run.

use std::path::Path;

use prost::Message;
use rewind_agent_proto::agent::{ExportXLogRequest, XLog as WireXLog};
use rewind_storage::codec::{column, row};
use rewind_workload::{Shop, ShopConfig};

use crate::agents::repo;
use crate::data::{now_ns, request, to_otlp_json};

type Body = fn(&[u8]);

const TARGETS: [(&str, Body); 8] = [
    ("otlp_protobuf", rewind_collector::fuzz::otlp_protobuf),
    ("otlp_json", rewind_collector::fuzz::otlp_json),
    ("xlog_native", rewind_collector::fuzz::xlog_native),
    ("wal_record", rewind_storage::fuzz::wal_record),
    ("column_pages", rewind_storage::fuzz::column_pages),
    ("segment_read", rewind_storage::fuzz::segment_read),
    ("stats_cell", rewind_storage::fuzz::stats_cell),
    ("zipkin", rewind_collector::fuzz::zipkin),
];

#[test]
fn fuzz_seeds_and_regressions_pass_every_target() {
    let mut replayed = 0;
    for (name, body) in TARGETS {
        for dir in ["seeds", "regressions"] {
            let Ok(entries) = std::fs::read_dir(repo().join("fuzz").join(dir).join(name)) else { continue };
            for e in entries {
                let path = e.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                if std::panic::catch_unwind(|| body(&data)).is_err() {
                    panic!("fuzz target {name} fails on {}", path.display());
                }
                replayed += 1;
            }
        }
    }
    assert!(replayed >= TARGETS.len(), "every target has seeds ({replayed} inputs)");
}

/// Writes `fuzz/seeds/`: one valid input per target, for the fuzzer to mutate from (`zipkin`'s
/// two, JSON and protobuf, were written once with py_zipkin's protobuf model).
/// `cargo test --test it write_fuzz_seeds -- --ignored`
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let seeds = repo().join("fuzz/seeds");
    let write = |target: &str, name: &str, data: &[u8]| {
        let dir = seeds.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), data).unwrap();
    };
    let mut shop = Shop::new(ShopConfig { seed: 1, incident: None });
    let shop_req = shop.request(2, now_ns() - 60_000_000_000, 1_000_000);
    write("otlp_protobuf", "shop", &shop_req.encode_to_vec());
    let varied = request(3, 2, 4);
    write("otlp_protobuf", "varied", &varied.encode_to_vec());
    write("otlp_json", "varied", to_otlp_json(&varied).to_string().as_bytes());
    write("otlp_json", "shop", to_otlp_json(&shop_req).to_string().as_bytes());
    let native = ExportXLogRequest {
        records: vec![WireXLog {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            service: "legacy".into(),
            endpoint: "/checkout".into(),
            start_time_unix_nano: 1_800_000_000_000_000_000 - 5_000_000_000,
            elapsed_nano: 12_000_000,
            error: true,
            sql_count: 3,
            ..Default::default()
        }],
    };
    write("xlog_native", "one", &native.encode_to_vec());
    let converted = rewind_collector::convert::convert(varied, &Default::default(), &Default::default(), now_ns(), 0);
    write("wal_record", "spans", &row::encode_batch(&converted.items));
    write(
        "column_pages",
        "varints",
        &[&[5u8, 0][..], &column::compress(&column::encode_varints(&[1, 2, 300, 4, 5]))].concat(),
    );
    let strs = ["a", "bb", "a", "", "ccc"];
    write("column_pages", "dict", &[&[5u8, 0][..], &column::compress(&column::encode_dict(&strs))].concat());
    write("segment_read", "small", &[3, 2, 1, 4, 1, 2, 3, 4, 2, 0, 7][..]);
    let mut cell = rewind_storage::stats::Cell::default();
    cell.record(5_000_000, false);
    cell.record(1_200_000_000, true);
    cell.active = [1, 0, 2];
    let mut encoded = Vec::new();
    cell.encode(&mut encoded);
    write("stats_cell", "cell", &encoded);
    assert!(Path::new(&seeds).exists());
}
