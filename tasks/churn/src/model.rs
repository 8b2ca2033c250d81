//! The churn model itself: a deterministic synthetic customer dataset, logistic regression
//! trained by full-batch gradient descent on standardised features, and its metrics
//! (accuracy, ROC AUC, log loss). Pure functions: no I/O, so they test natively.

use serde::{Deserialize, Serialize};

/// The features, in the order rows and weights hold them.
pub const FEATURES: [&str; 4] = ["tenure_months", "monthly_charges", "support_calls", "annual_contract"];

/// One customer: its features and whether it churned.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub x: [f64; 4],
    pub churned: bool,
}

/// A trained model, as `model.json` holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub kind: String,
    pub features: Vec<String>,
    pub weights: Vec<f64>,
    pub bias: f64,
    /// Standardisation: each feature's training mean and standard deviation.
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    /// The dataset it was trained on: its seed and size.
    pub seed: u64,
    pub trained_rows: usize,
}

/// xorshift64*: small, fast and the same everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

pub fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// `n` customers from `seed`; a fraction `label_noise` of labels flipped at random.
pub fn generate(n: usize, seed: u64, label_noise: f64) -> Vec<Row> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let tenure = (rng.unit() * 72.0).floor();
            let charges = 20.0 + rng.unit() * 100.0;
            let calls = (rng.unit() * rng.unit() * 10.0).floor();
            let annual = if rng.unit() < 0.4 { 1.0 } else { 0.0 };
            let logit = 0.5 - 0.06 * tenure + 0.025 * charges + 0.45 * calls - 1.6 * annual;
            let mut churned = rng.unit() < sigmoid(logit);
            if rng.unit() < label_noise {
                churned = !churned;
            }
            Row { x: [tenure, charges, calls, annual], churned }
        })
        .collect()
}

/// Fit by full-batch gradient descent (`epochs` steps of size `rate`) on standardised features.
pub fn train(rows: &[Row], epochs: u32, rate: f64, seed: u64) -> Model {
    let n = rows.len().max(1) as f64;
    let mut mean = [0.0; 4];
    let mut std = [0.0; 4];
    for j in 0..4 {
        mean[j] = rows.iter().map(|r| r.x[j]).sum::<f64>() / n;
        let var = rows.iter().map(|r| (r.x[j] - mean[j]).powi(2)).sum::<f64>() / n;
        std[j] = if var > 0.0 { var.sqrt() } else { 1.0 };
    }
    let z: Vec<[f64; 4]> = rows.iter().map(|r| std::array::from_fn(|j| (r.x[j] - mean[j]) / std[j])).collect();
    let (mut w, mut b) = ([0.0f64; 4], 0.0f64);
    for _ in 0..epochs {
        let (mut gw, mut gb) = ([0.0f64; 4], 0.0f64);
        for (x, r) in z.iter().zip(rows) {
            let p = sigmoid(b + (0..4).map(|j| w[j] * x[j]).sum::<f64>());
            let err = p - if r.churned { 1.0 } else { 0.0 };
            for j in 0..4 {
                gw[j] += err * x[j];
            }
            gb += err;
        }
        for j in 0..4 {
            w[j] -= rate * gw[j] / n;
        }
        b -= rate * gb / n;
    }
    Model {
        kind: "logistic_regression".into(),
        features: FEATURES.iter().map(|f| f.to_string()).collect(),
        weights: w.to_vec(),
        bias: b,
        mean: mean.to_vec(),
        std: std.to_vec(),
        seed,
        trained_rows: rows.len(),
    }
}

impl Model {
    /// The churn probability of features `x`.
    pub fn score(&self, x: &[f64; 4]) -> f64 {
        let z: f64 = (0..4).map(|j| self.weights[j] * (x[j] - self.mean[j]) / self.std[j]).sum();
        sigmoid(self.bias + z)
    }

    /// A model file that is not this shape is refused, naming what is wrong.
    pub fn check(&self) -> Result<(), String> {
        let ok = self.weights.len() == 4 && self.mean.len() == 4 && self.std.len() == 4;
        if !ok || self.kind != "logistic_regression" {
            return Err(format!("not a 4-feature logistic regression (kind `{}`)", self.kind));
        }
        Ok(())
    }
}

/// Accuracy at 0.5, ROC AUC and mean log loss of `model` on `rows`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub accuracy: f64,
    pub auc: f64,
    pub log_loss: f64,
    pub holdout_rows: usize,
}

pub fn evaluate(model: &Model, rows: &[Row]) -> Metrics {
    let scored: Vec<(f64, bool)> = rows.iter().map(|r| (model.score(&r.x), r.churned)).collect();
    let n = scored.len().max(1) as f64;
    let correct = scored.iter().filter(|(p, y)| (*p >= 0.5) == *y).count() as f64;
    let log_loss = -scored
        .iter()
        .map(|(p, y)| {
            let p = p.clamp(1e-12, 1.0 - 1e-12);
            if *y { p.ln() } else { (1.0 - p).ln() }
        })
        .sum::<f64>()
        / n;
    Metrics {
        accuracy: round4(correct / n),
        auc: round4(auc(&scored)),
        log_loss: round4(log_loss),
        holdout_rows: rows.len(),
    }
}

/// ROC AUC by ranks (ties share their mean rank).
fn auc(scored: &[(f64, bool)]) -> f64 {
    let mut sorted: Vec<(f64, bool)> = scored.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut rank_sum, mut i) = (0.0, 0);
    while i < sorted.len() {
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1].0 == sorted[i].0 {
            j += 1;
        }
        let mean_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += mean_rank * sorted[i..=j].iter().filter(|s| s.1).count() as f64;
        i = j + 1;
    }
    let pos = sorted.iter().filter(|s| s.1).count() as f64;
    let neg = sorted.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return 0.5;
    }
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// Rows as CSV (a header, then `tenure,charges,calls,annual,churned`).
pub fn to_csv(rows: &[Row]) -> String {
    let mut out = format!("{},churned\n", FEATURES.join(","));
    for r in rows {
        out.push_str(&format!("{},{:.2},{},{},{}\n", r.x[0], r.x[1], r.x[2], r.x[3], u8::from(r.churned)));
    }
    out
}

/// The rows of [`to_csv`]'s text; an error names the line.
pub fn from_csv(text: &str) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1).filter(|(_, l)| !l.trim().is_empty()) {
        let f: Vec<f64> = line
            .split(',')
            .map(|v| v.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("line {}: {e}", n + 1))?;
        if f.len() != 5 {
            return Err(format!("line {}: {} fields, expected 5", n + 1, f.len()));
        }
        rows.push(Row { x: [f[0], f[1], f[2], f[3]], churned: f[4] != 0.0 });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_learns_the_signal_and_noise_ruins_it() {
        let rows = generate(5000, 7, 0.0);
        let (train_rows, holdout) = rows.split_at(4000);
        let model = train(train_rows, 300, 0.5, 7);
        let good = evaluate(&model, holdout);
        assert!(good.accuracy > 0.75 && good.auc > 0.8, "{good:?}");
        let noisy = generate(5000, 7, 0.5);
        let bad = evaluate(&train(&noisy[..4000], 300, 0.5, 7), &noisy[4000..]);
        assert!(bad.accuracy < 0.6, "{bad:?}");
        assert_eq!(from_csv(&to_csv(holdout)).unwrap().len(), 1000);
    }
}
