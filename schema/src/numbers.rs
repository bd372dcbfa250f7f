//! How routesim writes the numbers of the configurations it generates.

/// `x` rounded to 4 significant digits: how routesim writes the numbers of the configurations it generates
/// (tuned knobs, fitted parameters), readable and exactly what was used.
pub fn round_sig(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(3 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}
