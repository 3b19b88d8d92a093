//! Which filters a table's scan can use, and what they say: a time range on the table's time
//! column (partitions, segments and pages outside it are not read) and equality of a dictionary
//! column or the trace id with a constant (pages without a match are not read past the column).
//! A filter is pushed only when the scan applies it exactly, to memory rows and to every row of
//! a page (`Exact`: DataFusion does not apply it again, and need not read its column).

use std::fmt;

use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::scalar::ScalarValue;

/// What the pushed filters of one scan say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// `[from, to)` in the unit of the time column (nanoseconds; seconds for the statistics).
    pub from: u64,
    pub to: u64,
    /// Equalities on columns the store can match, as (column, value).
    pub equals: Vec<(&'static str, String)>,
}

impl Default for Pushed {
    fn default() -> Self {
        Self { from: 0, to: u64::MAX, equals: Vec::new() }
    }
}

impl Pushed {
    pub fn equal(&self, column: &str) -> Option<&str> {
        self.equals.iter().find(|(c, _)| *c == column).map(|(_, v)| v.as_str())
    }

    /// Whether a time and the dictionary values of a row pass.
    pub fn passes_time(&self, t: u64) -> bool {
        t >= self.from && t < self.to
    }
}

impl fmt::Display for Pushed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "time=[{}, {})",
            self.from,
            if self.to == u64::MAX { "max".to_string() } else { self.to.to_string() }
        )?;
        if !self.equals.is_empty() {
            let eq: Vec<String> = self.equals.iter().map(|(c, v)| format!("{c} = '{v}'")).collect();
            write!(f, ", equals=[{}]", eq.join(", "))?;
        }
        Ok(())
    }
}

/// A table's pushable columns: its time column (and the nanoseconds in one of its units), and
/// the columns equality can be matched on.
#[derive(Debug, Clone, Copy)]
pub struct Pushable {
    pub time: &'static str,
    /// 1 for nanosecond time columns, 10^9 for the statistics' seconds.
    pub time_unit_ns: u64,
    pub equals: &'static [&'static str],
}

impl Pushable {
    /// Whether the scan applies `expr` exactly (then DataFusion need not apply it again).
    pub fn supports(&self, expr: &Expr) -> bool {
        let mut p = Pushed::default();
        self.apply(expr, &mut p)
    }

    pub fn analyze(&self, filters: &[Expr]) -> Pushed {
        let mut p = Pushed::default();
        for f in filters {
            self.apply(f, &mut p);
        }
        p
    }

    fn apply(&self, expr: &Expr, p: &mut Pushed) -> bool {
        match expr {
            Expr::BinaryExpr(BinaryExpr { left, op: Operator::And, right }) => {
                let l = self.apply(left, p);
                let r = self.apply(right, p);
                l && r
            }
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => match (&**left, &**right) {
                (Expr::Column(c), Expr::Literal(v, _)) => self.compare(&c.name, *op, v, p),
                (Expr::Literal(v, _), Expr::Column(c)) => match op.swap() {
                    Some(op) => self.compare(&c.name, op, v, p),
                    None => false,
                },
                _ => false,
            },
            Expr::Between(Between { expr, negated: false, low, high }) => match (&**expr, &**low, &**high) {
                (Expr::Column(c), Expr::Literal(lo, _), Expr::Literal(hi, _)) => {
                    let a = self.compare(&c.name, Operator::GtEq, lo, p);
                    let b = self.compare(&c.name, Operator::LtEq, hi, p);
                    a && b
                }
                _ => false,
            },
            _ => false,
        }
    }

    fn compare(&self, column: &str, op: Operator, v: &ScalarValue, p: &mut Pushed) -> bool {
        if column == self.time {
            let Some(t) = time_ns(v) else { return false };
            // Rows hold whole units (seconds for the statistics): bounds round so that a row
            // is inside exactly when its time satisfies the comparison.
            let unit = i128::from(self.time_unit_ns);
            let (floor, ceil) = (t.div_euclid(unit), -(-t).div_euclid(unit));
            let clamp = |x: i128| x.clamp(0, i128::from(u64::MAX)) as u64;
            match op {
                Operator::Gt => p.from = p.from.max(clamp(floor + 1)),
                Operator::GtEq => p.from = p.from.max(clamp(ceil)),
                Operator::Lt => p.to = p.to.min(clamp(ceil)),
                Operator::LtEq => p.to = p.to.min(clamp(floor + 1)),
                Operator::Eq if floor == ceil => {
                    p.from = p.from.max(clamp(floor));
                    p.to = p.to.min(clamp(floor + 1));
                }
                Operator::Eq => p.to = 0,
                _ => return false,
            }
            return true;
        }
        let Some(name) = self.equals.iter().find(|c| **c == column) else { return false };
        match (op, v) {
            (
                Operator::Eq,
                ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)),
            ) => {
                p.equals.push((name, s.clone()));
                true
            }
            _ => false,
        }
    }
}

/// Exact when the scan applies the filter to every row it returns; otherwise not pushed.
pub fn exactness(table: &Pushable, f: &Expr) -> TableProviderFilterPushDown {
    if table.supports(f) {
        TableProviderFilterPushDown::Exact
    } else {
        TableProviderFilterPushDown::Unsupported
    }
}

/// A timestamp literal in nanoseconds; a time zone does not change the instant.
fn time_ns(v: &ScalarValue) -> Option<i128> {
    Some(match v {
        ScalarValue::TimestampNanosecond(Some(t), _) => i128::from(*t),
        ScalarValue::TimestampMicrosecond(Some(t), _) => i128::from(*t) * 1_000,
        ScalarValue::TimestampMillisecond(Some(t), _) => i128::from(*t) * 1_000_000,
        ScalarValue::TimestampSecond(Some(t), _) => i128::from(*t) * 1_000_000_000,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::logical_expr::{col, lit};

    const SPANS: Pushable = Pushable { time: "start", time_unit_ns: 1, equals: &["service"] };

    fn ts(ns: i64) -> Expr {
        lit(ScalarValue::TimestampNanosecond(Some(ns), Some("UTC".into())))
    }

    #[test]
    fn time_bounds_and_equalities_are_read_from_filters() {
        let filters = [col("start").gt_eq(ts(100)), ts(500).gt(col("start")), col("service").eq(lit("cart"))];
        let p = SPANS.analyze(&filters);
        assert_eq!((p.from, p.to), (100, 500));
        assert_eq!(p.equal("service"), Some("cart"));
        assert!(filters.iter().all(|f| SPANS.supports(f)));
    }

    #[test]
    fn what_it_cannot_use_is_left_alone() {
        for f in [col("name").eq(lit("x")), col("service").not_eq(lit("x")), col("start").gt(lit(5))] {
            assert!(!SPANS.supports(&f), "{f}");
            assert_eq!(SPANS.analyze(&[f]), Pushed::default());
        }
        // Before the epoch and past the end of u64 clamp, never wrap.
        let p = SPANS.analyze(&[col("start").lt(ts(-5))]);
        assert_eq!((p.from, p.to), (0, 0));
        let p = SPANS.analyze(&[col("start").between(ts(10), ts(20))]);
        assert_eq!((p.from, p.to), (10, 21));
    }

    #[test]
    fn bounds_on_whole_seconds_round_to_the_rows_that_satisfy_them() {
        let stats = Pushable { time: "time", time_unit_ns: 1_000_000_000, equals: &[] };
        let s = 1_000_000_000i64;
        let p = stats.analyze(&[col("time").gt_eq(ts(10 * s + 1)), col("time").lt(ts(20 * s + 1))]);
        assert_eq!((p.from, p.to), (11, 21));
        let p = stats.analyze(&[col("time").gt(ts(10 * s)), col("time").lt_eq(ts(20 * s))]);
        assert_eq!((p.from, p.to), (11, 21));
        let p = stats.analyze(&[col("time").eq(ts(10 * s + 5))]);
        assert_eq!(p.to, 0);
    }
}
