//! Predicted acceptance for quality-aware policies: every endpoint's ability per task class, solved once when
//! the router is built (see [`crate::quality::solve_theta`]), so that deciding only evaluates a sigmoid.

use crate::model::{Endpoint, EndpointIdx, RequestInfo};
use crate::quality::{DEFAULT_CLASS, QualityConfig, acceptance, solve_theta};

/// The quality model of one task class: its discrimination and each endpoint's stated accuracy and ability.
#[derive(Clone, Debug, PartialEq)]
struct ClassRow {
    /// Discrimination of the class.
    a: f64,
    /// Per endpoint index: the stated accuracy on the class, `NaN` when the endpoint states none.
    accuracy: Vec<f64>,
    /// Per endpoint index: the ability solved from the accuracy, `NaN` when it states none.
    theta: Vec<f64>,
}

/// Abilities per (endpoint, task class), built once per router. Classes named by some endpoint's accuracy or
/// by the discrimination table have their own row; every other class (and a request without one) uses the
/// `default` row.
#[derive(Clone, Debug, PartialEq)]
pub struct QualityTable {
    /// Named classes, in the order of `rows[1..]`.
    classes: Vec<String>,
    /// `rows[0]` is the default row, `rows[i + 1]` the row of `classes[i]`.
    rows: Vec<ClassRow>,
}

impl QualityTable {
    /// The table of `endpoints` under `quality`.
    pub fn new(endpoints: &[Endpoint], quality: &QualityConfig) -> Self {
        let mut classes: Vec<String> = endpoints
            .iter()
            .flat_map(|e| e.quality.0.keys())
            .chain(quality.discrimination.keys())
            .filter(|c| c.as_str() != DEFAULT_CLASS)
            .cloned()
            .collect();
        classes.sort();
        classes.dedup();
        let row = |class: Option<&str>| {
            let a = quality.discrimination(class);
            let accuracy: Vec<f64> = endpoints.iter().map(|e| e.quality.for_class(class).unwrap_or(f64::NAN)).collect();
            let theta = accuracy.iter().map(|&p| if p.is_nan() { f64::NAN } else { solve_theta(p, a) }).collect();
            ClassRow { a, accuracy, theta }
        };
        let rows = std::iter::once(row(None)).chain(classes.iter().map(|c| row(Some(c)))).collect();
        QualityTable { classes, rows }
    }

    /// The classes named by the configuration (not `default`), sorted.
    pub fn named_classes(&self) -> &[String] {
        &self.classes
    }

    /// The row of `class`: its own when named, else the default row.
    #[inline]
    fn row(&self, class: Option<&str>) -> &ClassRow {
        let i = class.and_then(|c| self.classes.iter().position(|n| n == c)).map_or(0, |i| i + 1);
        &self.rows[i]
    }

    /// The stated accuracy of endpoint `e` on `class` (its own entry, else `default`), `None` when it states
    /// neither.
    pub fn accuracy(&self, e: EndpointIdx, class: Option<&str>) -> Option<f64> {
        Some(self.row(class).accuracy[e.get()]).filter(|p| !p.is_nan())
    }

    /// The predicted probability that endpoint `e` answers `req` acceptably: `acceptance(theta, a, d_hat)` when
    /// the request carries a difficulty estimate `d_hat`, else the class accuracy. `None` when the endpoint
    /// states no accuracy for the request's class.
    #[inline]
    pub fn predict(&self, e: EndpointIdx, req: &RequestInfo) -> Option<f64> {
        self.predictor(req.task_class.as_deref()).predict(e, req.difficulty)
    }

    /// The predictions for one request's class, to evaluate many endpoints without looking the class up again.
    #[inline]
    pub(crate) fn predictor(&self, class: Option<&str>) -> Predictor<'_> {
        Predictor { row: self.row(class) }
    }
}

/// [`QualityTable`]'s row of one task class.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Predictor<'t> {
    row: &'t ClassRow,
}

impl Predictor<'_> {
    /// See [`QualityTable::predict`].
    #[inline]
    pub(crate) fn predict(&self, e: EndpointIdx, difficulty: Option<f64>) -> Option<f64> {
        let acc = self.row.accuracy[e.get()];
        if acc.is_nan() {
            return None;
        }
        Some(match difficulty {
            Some(d) => acceptance(self.row.theta[e.get()], self.row.a, d),
            None => acc,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quality::{Accuracy, mean_acceptance};

    fn ep(id: &str, acc: &[(&str, f64)]) -> Endpoint {
        let mut e = Endpoint::new(id);
        e.quality = Accuracy(acc.iter().map(|(c, p)| (c.to_string(), *p)).collect());
        e
    }

    #[test]
    fn predictions_follow_the_class_rows_and_the_estimate() {
        let eps = [ep("weak", &[("default", 0.6), ("code", 0.3)]), ep("strong", &[("code", 0.9)])];
        let q = QualityConfig { discrimination: [("code".to_string(), 2.2)].into_iter().collect() };
        let t = QualityTable::new(&eps, &q);
        assert_eq!(t.named_classes(), ["code".to_string()]);
        let mut req = RequestInfo::new(1, 10);
        assert_eq!(t.predict(EndpointIdx(0), &req), Some(0.6));
        assert_eq!(t.predict(EndpointIdx(1), &req), None, "no default accuracy");
        req.task_class = Some("code".into());
        assert_eq!(t.predict(EndpointIdx(1), &req), Some(0.9));
        req.difficulty = Some(0.4);
        let theta = solve_theta(0.9, 2.2);
        assert!((mean_acceptance(theta, 2.2) - 0.9).abs() < 1e-9);
        assert_eq!(t.predict(EndpointIdx(1), &req), Some(acceptance(theta, 2.2, 0.4)));
        req.task_class = Some("chat".into());
        assert_eq!(t.predict(EndpointIdx(0), &req), Some(acceptance(solve_theta(0.6, 1.7), 1.7, 0.4)));
    }
}
