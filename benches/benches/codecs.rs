//! Micro-benchmarks of the hot code: OTLP decode and conversion, the WAL row codec, sealing a
//! segment, XLog derivation and sealing, the server map's statistics, and the column page
//! encoders.
//! `cargo bench -p rewind-benches --bench codecs`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use prost::Message;
use rewind_agent_proto::ExportTraceServiceRequest;
use rewind_collector::convert::{convert, Limits};
use rewind_storage::apm::derive::{Deriver, Extract};
use rewind_storage::codec::{column, row};
use rewind_storage::stats::accumulate::Accumulator;
use rewind_storage::stats::table::Resolution;
use rewind_storage::table::PAGE_ROWS;
use rewind_storage::AttributeKeys;
use rewind_storage::{spans, stats, xlog, DeriveConfig, Span, XLog};
use rewind_workload::{span_count, Shop, ShopConfig};

const T0: u64 = 1_750_000_000_000_000_000;

fn shop_request(traces: usize) -> ExportTraceServiceRequest {
    Shop::new(ShopConfig { seed: 5, incident: None }).request(traces, T0, 1_000_000)
}

fn shop_spans(traces: usize) -> Vec<Span> {
    convert(shop_request(traces), &Limits::default(), &AttributeKeys::default(), T0 + 3_600_000_000_000, 0).items
}

fn ingest(c: &mut Criterion) {
    let req = shop_request(50);
    let bytes = req.encode_to_vec();
    let n = span_count(&req);
    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(n));
    g.bench_function("prost decode (50 traces)", |b| {
        b.iter(|| ExportTraceServiceRequest::decode(black_box(&bytes[..])).unwrap())
    });
    // The census that prices a request before it is decoded (admission by decoded size).
    g.bench_function("census (50 traces)", |b| {
        b.iter(|| rewind_collector::census::otlp_protobuf(black_box(&bytes[..])).unwrap())
    });
    g.bench_function("decode + convert (50 traces)", |b| {
        b.iter(|| {
            let req = ExportTraceServiceRequest::decode(black_box(&bytes[..])).unwrap();
            convert(req, &Limits::default(), &AttributeKeys::default(), T0 + 3_600_000_000_000, 0)
        })
    });
    let spans = shop_spans(50);
    g.bench_function("WAL row encode (50 traces)", |b| b.iter(|| row::encode_batch(black_box(&spans))));
    let wal = row::encode_batch(&spans);
    g.bench_function("WAL row decode (50 traces)", |b| b.iter(|| row::decode_batch(black_box(&wal)).unwrap()));
    g.finish();
}

fn seal(c: &mut Criterion) {
    let spans = shop_spans(2000);
    let refs: Vec<&Span> = spans.iter().collect();
    let mut g = c.benchmark_group("seal");
    g.throughput(Throughput::Elements(spans.len() as u64));
    g.sample_size(20);
    g.bench_function("segment build (2000 traces)", |b| b.iter(|| spans::build(1, &mut || 1, black_box(&refs))));
    g.finish();
}

/// Per span of the shop workload: what derivation adds to ingest (extracting, off the writer
/// thread; merging into the deriver and finalizing, on it and at seals), and sealing the records.
fn xlog(c: &mut Criterion) {
    let spans: Vec<std::sync::Arc<Span>> = shop_spans(2000).into_iter().map(std::sync::Arc::new).collect();
    let mut g = c.benchmark_group("xlog");
    g.throughput(Throughput::Elements(spans.len() as u64));
    g.sample_size(20);
    g.bench_function("extract (2000 traces)", |b| b.iter(|| Extract::from_spans(black_box(&spans))));
    let derive = || {
        let mut d = Deriver::new(DeriveConfig::default());
        for (i, chunk) in spans.chunks(550).enumerate() {
            d.observe(i as u64, Extract::from_spans(chunk), 0);
        }
        d.finalize(u64::MAX / 2, false)
    };
    g.bench_function("extract + observe + finalize (2000 traces)", |b| b.iter(derive));
    let released = derive();
    let records: Vec<std::sync::Arc<XLog>> = released.records;
    let refs: Vec<&XLog> = records.iter().map(|x| &**x).collect();
    g.bench_function(format!("segment build ({} records of 2000 traces)", records.len()), |b| {
        b.iter(|| xlog::segment::build(1, &mut || 1, black_box(&refs)))
    });
    g.finish();

    // The server map's statistics, per span: a seal's cells from its transactions and calls,
    // then its second rows encoded.
    let links = released.links;
    let mut g = c.benchmark_group("statistics");
    g.throughput(Throughput::Elements(spans.len() as u64));
    g.sample_size(20);
    let accumulate = || {
        let mut acc = Accumulator::default();
        records.iter().for_each(|x| acc.transaction(x));
        links.iter().for_each(|l| acc.call(l));
        acc
    };
    g.bench_function(format!("accumulate ({} transactions, {} calls)", records.len(), links.len()), |b| {
        b.iter(accumulate)
    });
    let rows = accumulate().rows(Resolution::Second, |_| true);
    g.bench_function(format!("second rows build ({} rows)", rows.len()), |b| {
        b.iter(|| stats::table::build(&stats::table::SECONDS, 1, 1, black_box(&rows)))
    });
    g.finish();
}

fn columns(c: &mut Criterion) {
    let spans = shop_spans(400);
    let page: Vec<&Span> = spans.iter().take(PAGE_ROWS).collect();
    let names: Vec<&str> = page.iter().map(|s| &*s.name).collect();
    let starts: Vec<u64> = page.iter().map(|s| s.start_ns).collect();
    let statements: Vec<Option<&rewind_storage::Value>> =
        page.iter().map(|s| s.attribute("db.query.text").or_else(|| s.attribute("url.path"))).collect();
    let mut g = c.benchmark_group("column page");
    g.throughput(Throughput::Elements(page.len() as u64));
    g.bench_function("dictionary strings", |b| b.iter(|| column::encode_dict(black_box(&names))));
    g.bench_function("delta timestamps", |b| b.iter(|| column::encode_delta(black_box(&starts))));
    g.bench_function("attribute values", |b| b.iter(|| column::encode_values(black_box(&statements))));
    let body = column::encode_values(&statements);
    g.bench_function("zstd-3 compress", |b| b.iter(|| column::compress(black_box(&body))));
    let stored = column::compress(&body);
    g.bench_function("decompress + decode values", |b| {
        b.iter(|| column::decode_values(&column::decompress(black_box(&stored)).unwrap(), page.len()).unwrap())
    });
    g.finish();
}

criterion_group!(benches, ingest, seal, xlog, columns);
criterion_main!(benches);
