//! Which compressor for column pages: the real page bodies of sealed shop spans, compressed with
//! lz4 and zstd at several levels; bytes per span and compression/decompression speed.
//!
//! target/release/bench-compression [--traces 20000]

use std::time::Instant;

use rewind_benches::{write_results, Args};
use rewind_collector::convert::{convert, Limits};
use rewind_storage::codec::column;
use rewind_storage::now_ns;
use rewind_storage::AttributeKeys;
use rewind_storage::{spans, Span};
use rewind_workload::{Shop, ShopConfig};
use serde_json::json;

fn main() {
    let args = Args::parse();
    let traces: usize = args.get("traces", 20_000);
    let mut shop = Shop::new(ShopConfig { seed: 42, incident: None });
    let t0 = now_ns() - 3_600_000_000_000;
    let spans: Vec<Span> = (0..traces / 100)
        .flat_map(|i| {
            let req = shop.request(100, t0 + i as u64 * 100_000_000, 1_000_000);
            convert(req, &Limits::default(), &AttributeKeys::default(), now_ns(), 0).items
        })
        .collect();
    let refs: Vec<&Span> = spans.iter().collect();
    // The segment as the store would seal it; its chunks decompressed back into page bodies.
    let built = spans::build(1, &mut || 1, &refs).remove(0);
    let bodies: Vec<Vec<u8>> =
        built.chunks.iter().map(|(_, _, c)| column::decompress(c).unwrap().into_owned()).collect();
    let raw: usize = bodies.iter().map(Vec::len).sum();
    let n = spans.len() as f64;
    println!("\n{} spans, {} pages, {:.1} B/span before compression\n", spans.len(), bodies.len(), raw as f64 / n);
    println!("{:<12} {:>10} {:>16} {:>16}", "codec", "B/span", "compress MB/s", "decompress MB/s");
    type Codec = (&'static str, Box<dyn Fn(&[u8]) -> Vec<u8>>, Box<dyn Fn(&[u8], usize) -> Vec<u8>>);
    let zstd = |level: i32| -> Codec {
        let name: &'static str = Box::leak(format!("zstd-{level}").into_boxed_str());
        (
            name,
            Box::new(move |b| zstd::bulk::compress(b, level).unwrap()),
            Box::new(|c, len| zstd::bulk::decompress(c, len).unwrap()),
        )
    };
    let codecs: Vec<Codec> = vec![
        ("lz4", Box::new(lz4_flex::block::compress), Box::new(|c, len| lz4_flex::block::decompress(c, len).unwrap())),
        zstd(1),
        zstd(3),
        zstd(6),
        zstd(9),
    ];
    let mut figures = serde_json::Map::new();
    for (name, compress, decompress) in &codecs {
        let started = Instant::now();
        let compressed: Vec<Vec<u8>> = bodies.iter().map(|b| compress(b)).collect();
        let ct = started.elapsed().as_secs_f64();
        // Pages that do not shrink are stored raw, as the store does.
        let stored: usize = compressed.iter().zip(&bodies).map(|(c, b)| c.len().min(b.len()) + 1).sum();
        let started = Instant::now();
        for (c, b) in compressed.iter().zip(&bodies) {
            assert_eq!(decompress(c, b.len()).len(), b.len());
        }
        let dt = started.elapsed().as_secs_f64();
        let (per_span, c_mbps, d_mbps) = (stored as f64 / n, raw as f64 / ct / 1e6, raw as f64 / dt / 1e6);
        println!("{name:<12} {per_span:>10.2} {c_mbps:>16.0} {d_mbps:>16.0}");
        figures.insert(
            name.to_string(),
            json!({"bytes_per_span": per_span, "compress_mb_s": c_mbps, "decompress_mb_s": d_mbps}),
        );
    }
    figures.insert("spans".into(), json!(spans.len()));
    figures.insert("raw_bytes_per_span".into(), json!(raw as f64 / n));
    write_results("compression", &serde_json::Value::Object(figures));
}
