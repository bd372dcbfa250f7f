//! `routesim policies`: the routing policies router-core offers, one line each.

use router_core::PolicyKind;

/// The listing: `kind  summary` per policy, names aligned.
pub fn render() -> String {
    let width = PolicyKind::ALL.iter().map(|k| k.name().len()).max().unwrap_or(0);
    let mut out = String::new();
    for k in PolicyKind::ALL {
        out.push_str(&format!("{:<width$}  {}\n", k.name(), k.summary()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_every_policy_once() {
        let text = render();
        assert_eq!(text.lines().count(), PolicyKind::ALL.len());
        for k in PolicyKind::ALL {
            assert_eq!(text.lines().filter(|l| l.starts_with(&format!("{} ", k.name()))).count(), 1, "{}", k.name());
        }
    }
}
