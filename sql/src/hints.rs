//! Which attribute keys a query reads. A span's attributes are one stored column per key; a
//! query that only asks `attr(attributes, 'db.query.text')` should read that key's chunks, not
//! every key's, and build a map of one entry per row rather than of ten. DataFusion does not push
//! expressions into scans, so an optimizer rule (run last, on the final plan) looks at how the
//! plan uses the `attributes` and `resource` columns and tells the session's providers: only
//! through `attr(col, 'key')` with constant keys, or passed up unchanged by projections to such
//! uses (then those keys), or any other way: in the answer, renamed, compared, grouped by, given
//! to another function (then all of them). Keys are gathered by column name over the whole plan,
//! whatever the table or alias: at worst a scan reads keys another table's expression wanted.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};
use datafusion::scalar::ScalarValue;
use parking_lot::Mutex;

/// The map columns of the tables.
pub const ATTRIBUTES: &str = "attributes";
pub const RESOURCE: &str = "resource";

/// Keys of a map column a query reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Keys {
    #[default]
    All,
    Only(BTreeSet<String>),
}

impl Keys {
    fn add(&mut self, key: &str) {
        if let Keys::Only(set) = self {
            set.insert(key.to_string());
        }
    }
}

/// What one session's plan reads of each map column; `All` until the rule has seen the plan.
#[derive(Debug, Default)]
pub struct Hints(Mutex<(Keys, Keys)>);

impl Hints {
    pub fn attributes(&self) -> Keys {
        self.0.lock().0.clone()
    }

    pub fn resource(&self) -> Keys {
        self.0.lock().1.clone()
    }
}

/// The rule: observes, never rewrites.
#[derive(Debug)]
pub struct KeysRule(pub Arc<Hints>);

impl OptimizerRule for KeysRule {
    fn name(&self) -> &str {
        "rewind_attribute_keys"
    }

    fn rewrite(&self, plan: LogicalPlan, _config: &dyn OptimizerConfig) -> Result<Transformed<LogicalPlan>> {
        let mut seen = (Keys::Only(BTreeSet::new()), Keys::Only(BTreeSet::new()));
        plan.apply_with_subqueries(|node| {
            let projection = matches!(node, LogicalPlan::Projection(_));
            node.apply_expressions(|e| {
                // A projection passing the column up as it is (not renamed) leaves its use to
                // the nodes above.
                if !(projection && matches!(e, Expr::Column(_))) {
                    visit(e, &mut seen)?;
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })?;
        // Asked for whole in the answer.
        for f in plan.schema().fields() {
            if let Some(keys) = slot(&mut seen, f.name()) {
                *keys = Keys::All;
            }
        }
        *self.0 .0.lock() = seen;
        Ok(Transformed::no(plan))
    }
}

fn slot<'a>(seen: &'a mut (Keys, Keys), column: &str) -> Option<&'a mut Keys> {
    match column {
        ATTRIBUTES => Some(&mut seen.0),
        RESOURCE => Some(&mut seen.1),
        _ => None,
    }
}

fn visit(e: &Expr, seen: &mut (Keys, Keys)) -> Result<TreeNodeRecursion> {
    e.apply(|x| {
        Ok(match x {
            Expr::ScalarFunction(f) if f.func.name() == "attr" => match f.args.as_slice() {
                [Expr::Column(c), Expr::Literal(
                    ScalarValue::Utf8(Some(k)) | ScalarValue::LargeUtf8(Some(k)) | ScalarValue::Utf8View(Some(k)),
                    _,
                )] if slot(seen, &c.name).is_some() => {
                    slot(seen, &c.name).expect("checked").add(k);
                    // The column inside is read only for this key.
                    TreeNodeRecursion::Jump
                }
                _ => TreeNodeRecursion::Continue,
            },
            Expr::Column(c) => {
                if let Some(keys) = slot(seen, &c.name) {
                    *keys = Keys::All;
                }
                TreeNodeRecursion::Continue
            }
            _ => TreeNodeRecursion::Continue,
        })
    })
}
