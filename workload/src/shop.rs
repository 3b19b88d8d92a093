//! The "shop": USER → frontend → catalog, cart, checkout; catalog → MySQL; cart → Redis;
//! checkout → payment (external, uninstrumented) and → Kafka → shipping (consumer) → MySQL.
//! Every trace is built top-down with a time cursor, so parents enclose their children and an
//! incident's slowdown propagates up the call chain as it would in a real system.

use std::str::FromStr;

use rewind_agent_proto::otlp::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use rewind_agent_proto::otlp::resource::v1::Resource;
use rewind_agent_proto::otlp::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use rewind_agent_proto::ExportTraceServiceRequest;

use crate::rng::Rng;

/// What an incident hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    Mysql,
    Redis,
    Payment,
    Kafka,
    Catalog,
    Cart,
    Checkout,
    Shipping,
}

impl FromStr for Dependency {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "mysql" => Self::Mysql,
            "redis" => Self::Redis,
            "payment" => Self::Payment,
            "kafka" => Self::Kafka,
            "catalog" => Self::Catalog,
            "cart" => Self::Cart,
            "checkout" => Self::Checkout,
            "shipping" => Self::Shipping,
            other => {
                return Err(format!(
                "unknown dependency {other:?}; one of mysql, redis, payment, kafka, catalog, cart, checkout, shipping"
            ))
            }
        })
    }
}

/// For `[start_ns, end_ns)`, calls to `dependency` take `slowdown` times longer and `error_share`
/// of them fail.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Incident {
    pub start_ns: u64,
    pub end_ns: u64,
    pub dependency: Dependency,
    pub slowdown: f64,
    pub error_share: f64,
}

#[derive(Debug, Clone)]
pub struct ShopConfig {
    pub seed: u64,
    pub incident: Option<Incident>,
}

const SERVICES: &[(&str, usize, &str)] = &[
    ("frontend", 3, "nodejs"),
    ("catalog", 2, "java"),
    ("cart", 2, "dotnet"),
    ("checkout", 2, "go"),
    ("shipping", 2, "python"),
];
const FRONTEND: usize = 0;
const CATALOG: usize = 1;
const CART: usize = 2;
const CHECKOUT: usize = 3;
const SHIPPING: usize = 4;

pub struct Shop {
    rng: Rng,
    incident: Option<Incident>,
    /// Per service, per instance.
    resources: Vec<Vec<Resource>>,
}

fn kv(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(v) }) }
}

fn st(key: &str, v: impl Into<String>) -> KeyValue {
    kv(key, any_value::Value::StringValue(v.into()))
}

fn int(key: &str, v: i64) -> KeyValue {
    kv(key, any_value::Value::IntValue(v))
}

/// Spans of one trace as they are built, each tagged with the (service, instance) that emits it.
struct Trace {
    id: Vec<u8>,
    spans: Vec<((usize, usize), Span)>,
    /// Instance serving this trace, per service.
    instance: [usize; SERVICES.len()],
}

/// The outcome of a call, seen from the caller.
#[derive(Clone, Copy)]
struct Call {
    end_ns: u64,
    failed: bool,
}

impl Shop {
    pub fn new(config: ShopConfig) -> Self {
        let mut resources = Vec::new();
        for (si, (name, instances, lang)) in SERVICES.iter().enumerate() {
            let mut per = Vec::new();
            for i in 0..*instances {
                let pod = format!("{name}-7f9c{si}d-{}", ["x2k4p", "m8q1z", "b7w3n"][i]);
                per.push(Resource {
                    attributes: vec![
                        st("service.name", *name),
                        st("service.namespace", "shop"),
                        st("service.version", "1.4.2"),
                        st("service.instance.id", pod.clone()),
                        st("host.name", format!("node-{}", (si + i) % 4 + 1)),
                        st("k8s.namespace.name", "shop"),
                        st("k8s.deployment.name", *name),
                        st("k8s.pod.name", pod),
                        st("telemetry.sdk.name", "opentelemetry"),
                        st("telemetry.sdk.language", *lang),
                    ],
                    ..Default::default()
                });
            }
            resources.push(per);
        }
        Self { rng: Rng::new(config.seed), incident: config.incident, resources }
    }

    /// A request of `traces` traces, the i-th starting at `start_ns + i * interval_ns`, with one
    /// `ResourceSpans` per emitting instance, as an SDK's batch exporter would send them.
    pub fn request(&mut self, traces: usize, start_ns: u64, interval_ns: u64) -> ExportTraceServiceRequest {
        let mut by_resource: Vec<Vec<Vec<Span>>> =
            self.resources.iter().map(|per| per.iter().map(|_| Vec::new()).collect()).collect();
        for i in 0..traces {
            let t = self.trace(start_ns + i as u64 * interval_ns);
            for ((s, inst), span) in t.spans {
                by_resource[s][inst].push(span);
            }
        }
        let mut resource_spans = Vec::new();
        for (s, per) in by_resource.into_iter().enumerate() {
            for (inst, spans) in per.into_iter().enumerate() {
                if spans.is_empty() {
                    continue;
                }
                resource_spans.push(ResourceSpans {
                    resource: Some(self.resources[s][inst].clone()),
                    scope_spans: vec![ScopeSpans {
                        scope: Some(InstrumentationScope {
                            name: format!("opentelemetry.instrumentation.{}", SERVICES[s].2),
                            version: "0.52b0".into(),
                            ..Default::default()
                        }),
                        spans,
                        schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
                    }],
                    schema_url: String::new(),
                });
            }
        }
        ExportTraceServiceRequest { resource_spans }
    }

    fn id<const N: usize>(&mut self) -> Vec<u8> {
        let mut out = Vec::with_capacity(N);
        while out.len() < N {
            out.extend_from_slice(&self.rng.next_u64().to_be_bytes());
        }
        out.truncate(N);
        if out.iter().all(|b| *b == 0) {
            out[N - 1] = 1;
        }
        out
    }

    /// (slowdown, fails) for a call to `dep` at `t`.
    fn hit(&mut self, dep: Dependency, t: u64) -> (f64, bool) {
        match self.incident {
            Some(i) if i.dependency == dep && (i.start_ns..i.end_ns).contains(&t) => {
                (i.slowdown, self.rng.chance(i.error_share))
            }
            _ => (1.0, false),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        t: &mut Trace,
        service: usize,
        parent: &[u8],
        name: String,
        kind: i32,
        start: u64,
        end: u64,
        attributes: Vec<KeyValue>,
        failed: Option<&str>,
    ) -> Vec<u8> {
        let span_id = self.id::<8>();
        let (status, events) = match failed {
            Some(msg) => (
                Some(Status { code: 2, message: msg.into() }),
                vec![span::Event {
                    time_unix_nano: end.saturating_sub(1000).max(start),
                    name: "exception".into(),
                    attributes: vec![st("exception.type", "UpstreamError"), st("exception.message", msg)],
                    dropped_attributes_count: 0,
                }],
            ),
            None => (None, Vec::new()),
        };
        t.spans.push((
            (service, t.instance[service]),
            Span {
                trace_id: t.id.clone(),
                span_id: span_id.clone(),
                parent_span_id: parent.to_vec(),
                trace_state: String::new(),
                flags: 1,
                name,
                kind,
                start_time_unix_nano: start,
                end_time_unix_nano: end,
                attributes,
                dropped_attributes_count: 0,
                events,
                dropped_events_count: 0,
                links: vec![],
                dropped_links_count: 0,
                status,
            },
        ));
        span_id
    }

    fn trace(&mut self, start: u64) -> Trace {
        let mut instance = [0; SERVICES.len()];
        for (i, (_, n, _)) in SERVICES.iter().enumerate() {
            instance[i] = self.rng.below(*n as u64) as usize;
        }
        let mut t = Trace { id: self.id::<16>(), spans: Vec::with_capacity(16), instance };
        let user = self.rng.below(50_000);
        let client_ip = format!("10.{}.{}.{}", self.rng.below(4), self.rng.below(256), 1 + self.rng.below(254));
        let product = 1 + self.rng.below(5000);
        let route_pick = self.rng.unit();
        let (method, route, path) = if route_pick < 0.5 {
            ("GET", "/product/{id}", format!("/product/{product}"))
        } else if route_pick < 0.7 {
            ("GET", "/", "/".to_string())
        } else if route_pick < 0.9 {
            ("POST", "/cart/items", "/cart/items".to_string())
        } else {
            ("POST", "/checkout", "/checkout".to_string())
        };
        let root_id = self.id::<8>();
        let mut cursor = start + self.rng.latency_ns(300.0, 0.4);
        let mut failed = false;
        let mut calls: Vec<(usize, &str, &str)> = match route {
            "/product/{id}" => vec![(CATALOG, "GET", "/products/{id}"), (CART, "GET", "/cart/count")],
            "/" => vec![(CATALOG, "GET", "/products"), (CART, "GET", "/cart/count")],
            "/cart/items" => vec![(CATALOG, "GET", "/products/{id}/price"), (CART, "POST", "/cart/items")],
            _ => vec![(CATALOG, "GET", "/products/{id}/price"), (CART, "GET", "/cart"), (CHECKOUT, "POST", "/orders")],
        };
        for (svc, m, r) in calls.drain(..) {
            let c = self.http_call(&mut t, &root_id, FRONTEND, svc, m, r, cursor, user, product);
            failed |= c.failed;
            cursor = c.end_ns + self.rng.latency_ns(150.0, 0.5);
        }
        if route != "/checkout" {
            let render_end = cursor + self.rng.latency_ns(900.0, 0.5);
            self.push(
                &mut t,
                FRONTEND,
                &root_id,
                "render".into(),
                1,
                cursor,
                render_end,
                vec![st("template", route)],
                None,
            );
            cursor = render_end;
        }
        let end = cursor + self.rng.latency_ns(200.0, 0.4);
        let status = if failed {
            500
        } else if method == "POST" {
            201
        } else {
            200
        };
        let mut attrs = vec![
            st("http.request.method", method),
            st("http.route", route),
            st("url.path", path),
            st("url.scheme", "https"),
            int("http.response.status_code", status),
            st("server.address", "shop.example.com"),
            st("client.address", client_ip),
            st("user_agent.original", *self.rng.pick(&UAS)),
            st("network.protocol.version", "1.1"),
            st("enduser.id", format!("user-{user}")),
        ];
        if failed {
            attrs.push(st("error.type", "500"));
        }
        let span = Span {
            trace_id: t.id.clone(),
            span_id: root_id,
            parent_span_id: vec![],
            trace_state: String::new(),
            flags: 1,
            name: format!("{method} {route}"),
            kind: 2,
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            attributes: attrs,
            dropped_attributes_count: 0,
            events: vec![],
            dropped_events_count: 0,
            links: vec![],
            dropped_links_count: 0,
            status: failed.then(|| Status { code: 2, message: "upstream failure".into() }),
        };
        let at = (FRONTEND, t.instance[FRONTEND]);
        t.spans.insert(0, (at, span));
        t
    }

    /// A CLIENT span in `from` and the SERVER span of `to` inside it, with `to`'s own work.
    #[allow(clippy::too_many_arguments)]
    fn http_call(
        &mut self,
        t: &mut Trace,
        parent: &[u8],
        from: usize,
        to: usize,
        method: &str,
        route: &str,
        start: u64,
        user: u64,
        product: u64,
    ) -> Call {
        let client_id = self.id::<8>();
        let net = self.rng.latency_ns(250.0, 0.3);
        let server_start = start + net;
        let dep = [Dependency::Catalog, Dependency::Cart, Dependency::Checkout][to - 1];
        let (slow, fails_itself) = self.hit(dep, start);
        let server_id = self.id::<8>();
        let mut cursor = server_start + (self.rng.latency_ns(400.0, 0.5) as f64 * slow) as u64;
        let mut failed = fails_itself;
        match to {
            CATALOG => {
                let queries = match route {
                    "/products" => 4,
                    "/products/{id}" => 3,
                    _ => 1,
                };
                for q in 0..queries {
                    let c = self.mysql(t, &server_id, CATALOG, cursor, q, product);
                    failed |= c.failed;
                    cursor = c.end_ns + self.rng.latency_ns(60.0, 0.5);
                }
            }
            CART => {
                let cmds: &[&str] = match route {
                    "/cart/count" => &["HLEN"],
                    "/cart" => &["HGETALL", "TTL"],
                    _ => &["HGET", "HSET", "EXPIRE"],
                };
                for cmd in cmds {
                    let c = self.redis(t, &server_id, cursor, cmd, user);
                    failed |= c.failed;
                    cursor = c.end_ns + self.rng.latency_ns(40.0, 0.5);
                }
            }
            _ => {
                let c = self.payment(t, &server_id, cursor, user);
                failed |= c.failed;
                cursor = c.end_ns + self.rng.latency_ns(100.0, 0.5);
                if !c.failed {
                    let c = self.mysql(t, &server_id, CHECKOUT, cursor, 9, product);
                    failed |= c.failed;
                    cursor = c.end_ns;
                    let c = self.kafka(t, &server_id, cursor, user);
                    failed |= c.failed;
                    cursor = c.end_ns;
                }
            }
        }
        let server_end = cursor + self.rng.latency_ns(120.0, 0.4);
        let (name, port) = (SERVICES[to].0, 8080 + to as i64);
        let status = if failed { 500 } else { 200 };
        let mut server_attrs = vec![
            st("http.request.method", method),
            st("http.route", route),
            st("url.path", route.replace("{id}", &product.to_string())),
            st("url.scheme", "http"),
            int("http.response.status_code", status),
            st("server.address", name),
            int("server.port", port),
            st("client.address", "10.244.0.12"),
            st("network.protocol.version", "1.1"),
            st("user_agent.original", "frontend/1.4.2"),
        ];
        if failed {
            server_attrs.push(st("error.type", "500"));
        }
        let err = failed.then_some("upstream failure");
        t.spans.push((
            (to, t.instance[to]),
            Span {
                trace_id: t.id.clone(),
                span_id: server_id,
                parent_span_id: client_id.clone(),
                flags: 1,
                name: format!("{method} {route}"),
                kind: 2,
                start_time_unix_nano: server_start,
                end_time_unix_nano: server_end,
                attributes: server_attrs,
                status: err.map(|m| Status { code: 2, message: m.into() }),
                ..Default::default()
            },
        ));
        let end = server_end + net;
        let mut client_attrs = vec![
            st("http.request.method", method),
            st("url.full", format!("http://{name}:{port}{}", route.replace("{id}", &product.to_string()))),
            st("server.address", name),
            int("server.port", port),
            int("http.response.status_code", status),
            st("network.protocol.version", "1.1"),
            st("peer.service", name),
        ];
        if failed {
            client_attrs.push(st("error.type", "500"));
        }
        t.spans.push((
            (from, t.instance[from]),
            Span {
                trace_id: t.id.clone(),
                span_id: client_id,
                parent_span_id: parent.to_vec(),
                flags: 1,
                name: format!("{method} {route}"),
                kind: 3,
                start_time_unix_nano: start,
                end_time_unix_nano: end,
                attributes: client_attrs,
                status: err.map(|m| Status { code: 2, message: m.into() }),
                ..Default::default()
            },
        ));
        Call { end_ns: end, failed }
    }

    fn mysql(&mut self, t: &mut Trace, parent: &[u8], service: usize, start: u64, q: usize, product: u64) -> Call {
        let (slow, fails) = self.hit(Dependency::Mysql, start);
        let end = start + (self.rng.latency_ns(1500.0, 0.6) as f64 * slow) as u64;
        let (op, table, stmt) = SQL[q.min(SQL.len() - 1)];
        // shipping's older instrumentation still speaks the pre-1.26 attribute names.
        let old = service == SHIPPING;
        let attrs = vec![
            st(if old { "db.system" } else { "db.system.name" }, "mysql"),
            st(if old { "db.name" } else { "db.namespace" }, "shop"),
            st(if old { "db.statement" } else { "db.query.text" }, stmt),
            st("db.operation.name", op),
            st("db.collection.name", table),
            st(if old { "net.peer.name" } else { "server.address" }, "mysql"),
            int("server.port", 3306),
            int("db.response.returned_rows", (product % 20) as i64),
        ];
        self.push(
            t,
            service,
            parent,
            format!("{op} shop.{table}"),
            3,
            start,
            end,
            attrs,
            fails.then_some("Lock wait timeout exceeded"),
        );
        Call { end_ns: end, failed: fails }
    }

    fn redis(&mut self, t: &mut Trace, parent: &[u8], start: u64, cmd: &str, user: u64) -> Call {
        let (slow, fails) = self.hit(Dependency::Redis, start);
        let end = start + (self.rng.latency_ns(250.0, 0.5) as f64 * slow) as u64;
        let attrs = vec![
            st("db.system.name", "redis"),
            st("db.query.text", format!("{cmd} cart:user-{user}")),
            st("db.operation.name", cmd),
            st("db.namespace", "0"),
            st("server.address", "redis"),
            int("server.port", 6379),
            st("network.peer.address", "10.96.4.20"),
        ];
        self.push(
            t,
            CART,
            parent,
            cmd.to_string(),
            3,
            start,
            end,
            attrs,
            fails.then_some("READONLY You can't write against a read only replica"),
        );
        Call { end_ns: end, failed: fails }
    }

    fn payment(&mut self, t: &mut Trace, parent: &[u8], start: u64, user: u64) -> Call {
        let (slow, fails) = self.hit(Dependency::Payment, start);
        let end = start + (self.rng.latency_ns(80_000.0, 0.35) as f64 * slow) as u64;
        let attrs = vec![
            st("http.request.method", "POST"),
            st("url.full", "https://api.payments.example.net/v2/charges"),
            st("server.address", "api.payments.example.net"),
            int("server.port", 443),
            int("http.response.status_code", if fails { 503 } else { 200 }),
            st("peer.service", "payment"),
            st("network.protocol.version", "2"),
            st("payment.customer", format!("cus_{user:06}")),
        ];
        self.push(
            t,
            CHECKOUT,
            parent,
            "POST /v2/charges".into(),
            3,
            start,
            end,
            attrs,
            fails.then_some("503 Service Unavailable"),
        );
        Call { end_ns: end, failed: fails }
    }

    /// The producer span in checkout and, after the queue's lag, shipping's consumer span.
    fn kafka(&mut self, t: &mut Trace, parent: &[u8], start: u64, user: u64) -> Call {
        let (slow, fails) = self.hit(Dependency::Kafka, start);
        let end = start + (self.rng.latency_ns(2000.0, 0.5) as f64 * slow) as u64;
        let order = self.rng.next_u64() % 10_000_000;
        let attrs = vec![
            st("messaging.system", "kafka"),
            st("messaging.destination.name", "orders"),
            st("messaging.operation.type", "send"),
            st("messaging.kafka.message.key", format!("order-{order}")),
            st("server.address", "kafka"),
            int("server.port", 9092),
            st("messaging.client.id", "checkout-producer"),
        ];
        let producer = self.push(
            t,
            CHECKOUT,
            parent,
            "orders publish".into(),
            4,
            start,
            end,
            attrs,
            fails.then_some("NOT_LEADER_OR_FOLLOWER"),
        );
        if !fails {
            let c_start = end + self.rng.latency_ns(15_000.0, 0.8);
            let consumer_id = self.id::<8>();
            // An incident of shipping slows its own work around the query, and fails it.
            let (slow, fails_itself) = self.hit(Dependency::Shipping, c_start);
            let q_start = c_start + (self.rng.latency_ns(200.0, 0.4) as f64 * slow) as u64;
            let q = self.mysql(t, &consumer_id, SHIPPING, q_start, 10, user);
            let c_end = q.end_ns + (self.rng.latency_ns(300.0, 0.4) as f64 * slow) as u64;
            let failure = match (fails_itself, q.failed) {
                (true, _) => Some("shipment rejected"),
                (false, true) => Some("upstream failure"),
                (false, false) => None,
            };
            t.spans.push((
                (SHIPPING, t.instance[SHIPPING]),
                Span {
                    trace_id: t.id.clone(),
                    span_id: consumer_id,
                    parent_span_id: producer,
                    flags: 1,
                    name: "orders process".into(),
                    kind: 5,
                    start_time_unix_nano: c_start,
                    end_time_unix_nano: c_end,
                    attributes: vec![
                        st("messaging.system", "kafka"),
                        st("messaging.destination.name", "orders"),
                        st("messaging.operation.type", "process"),
                        st("messaging.consumer.group.name", "shipping"),
                        st("messaging.kafka.message.key", format!("order-{order}")),
                        int("messaging.kafka.offset", (order * 7) as i64),
                    ],
                    status: failure.map(|m| Status { code: 2, message: m.into() }),
                    ..Default::default()
                },
            ));
        }
        Call { end_ns: end, failed: fails }
    }
}

const UAS: [&str; 4] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15",
    "shop-android/3.12.0 okhttp/4.12.0",
];

const SQL: [(&str, &str, &str); 11] = [
    ("SELECT", "products", "SELECT id, name, price, stock FROM products WHERE id = ?"),
    ("SELECT", "reviews", "SELECT author, rating, body FROM reviews WHERE product_id = ? ORDER BY created_at DESC LIMIT 10"),
    ("SELECT", "products", "SELECT id, name, price FROM products WHERE category_id = (SELECT category_id FROM products WHERE id = ?) LIMIT 8"),
    ("SELECT", "categories", "SELECT id, name FROM categories ORDER BY position"),
    ("SELECT", "products", "SELECT id, name, price FROM products WHERE featured = 1 LIMIT 24"),
    ("SELECT", "products", "SELECT id, name, price FROM products ORDER BY sold DESC LIMIT 12"),
    ("SELECT", "banners", "SELECT id, image_url FROM banners WHERE active = 1"),
    ("SELECT", "products", "SELECT price FROM products WHERE id = ?"),
    ("SELECT", "products", "SELECT price FROM products WHERE id = ?"),
    ("INSERT", "orders", "INSERT INTO orders (user_id, total, status, created_at) VALUES (?, ?, 'paid', NOW())"),
    ("INSERT", "shipments", "INSERT INTO shipments (order_id, address_id, status) VALUES (?, ?, 'pending')"),
];

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_750_000_000_000_000_000;

    fn spans(r: &ExportTraceServiceRequest) -> Vec<&Span> {
        r.resource_spans.iter().flat_map(|rs| &rs.scope_spans).flat_map(|ss| &ss.spans).collect()
    }

    #[test]
    fn same_seed_same_workload() {
        let a = Shop::new(ShopConfig { seed: 7, incident: None }).request(50, T0, 1_000_000);
        let b = Shop::new(ShopConfig { seed: 7, incident: None }).request(50, T0, 1_000_000);
        let c = Shop::new(ShopConfig { seed: 8, incident: None }).request(50, T0, 1_000_000);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn traces_have_the_shop_shape() {
        let r = Shop::new(ShopConfig { seed: 1, incident: None }).request(2000, T0, 1_000_000);
        let all = spans(&r);
        let per_trace = all.len() as f64 / 2000.0;
        assert!((10.0..=15.0).contains(&per_trace), "{per_trace} spans per trace");
        let attrs = all.iter().map(|s| s.attributes.len()).sum::<usize>() as f64 / all.len() as f64;
        assert!((6.0..=12.0).contains(&attrs), "{attrs} attributes per span");
        // Every parent exists in the trace and encloses its child.
        let by_id: std::collections::HashMap<_, _> = all.iter().map(|s| (s.span_id.clone(), *s)).collect();
        for s in &all {
            if s.parent_span_id.is_empty() {
                continue;
            }
            let p = by_id[&s.parent_span_id];
            assert_eq!(p.trace_id, s.trace_id);
            if s.kind != 5 {
                assert!(
                    p.start_time_unix_nano <= s.start_time_unix_nano && s.end_time_unix_nano <= p.end_time_unix_nano,
                    "{} in {}",
                    s.name,
                    p.name
                );
            }
        }
        let names: std::collections::HashSet<_> = r
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.resource.as_ref().unwrap().attributes)
            .filter(|kv| kv.key == "service.name")
            .filter_map(|kv| match &kv.value.as_ref()?.value {
                Some(any_value::Value::StringValue(s)) => Some(s.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(names.len(), 5);
    }

    #[test]
    fn an_incident_slows_and_fails_its_dependency_only_inside_its_window() {
        let window = (T0 + 1_000_000_000, T0 + 2_000_000_000);
        let incident = Incident {
            start_ns: window.0,
            end_ns: window.1,
            dependency: Dependency::Mysql,
            slowdown: 10.0,
            error_share: 0.3,
        };
        let r = Shop::new(ShopConfig { seed: 3, incident: Some(incident) }).request(3000, T0, 1_000_000);
        let db: Vec<&Span> = spans(&r).into_iter().filter(|s| s.name.contains("shop.")).collect();
        let (inside, outside): (Vec<&Span>, Vec<&Span>) =
            db.iter().partition(|s| (window.0..window.1).contains(&s.start_time_unix_nano));
        let avg = |v: &[&Span]| {
            v.iter().map(|s| (s.end_time_unix_nano - s.start_time_unix_nano) as f64).sum::<f64>() / v.len() as f64
        };
        let errors = |v: &[&Span]| {
            v.iter().filter(|s| s.status.as_ref().is_some_and(|st| st.code == 2)).count() as f64 / v.len() as f64
        };
        assert!(avg(&inside) > 5.0 * avg(&outside));
        assert!((0.2..0.4).contains(&errors(&inside)), "{}", errors(&inside));
        assert_eq!(errors(&outside), 0.0);
    }

    /// Every dependency an incident can name fails some calls when it does: none is ignored.
    #[test]
    fn every_dependency_can_be_hit() {
        let failed = |incident: Option<Incident>| {
            let r = Shop::new(ShopConfig { seed: 5, incident }).request(2000, T0, 1_000_000);
            spans(&r).iter().filter(|s| s.status.as_ref().is_some_and(|st| st.code == 2)).count()
        };
        let quiet = failed(None);
        for name in ["mysql", "redis", "payment", "kafka", "catalog", "cart", "checkout", "shipping"] {
            let dependency: Dependency = name.parse().unwrap();
            let incident =
                Incident { start_ns: T0, end_ns: T0 + 3_000_000_000, dependency, slowdown: 2.0, error_share: 0.5 };
            assert!(failed(Some(incident)) > quiet + 20, "{name}: {} vs {quiet}", failed(Some(incident)));
        }
    }
}
