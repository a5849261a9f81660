//! Learning-rate schedule: linear warmup, then cosine decay to `min_lr` at the last step.
//!
//! ```text
//! lr(s) = lr · (s+1)/(warmup+1)                                  s < warmup
//! lr(s) = min_lr + ½(1 + cos(π·(s−warmup)/(steps−warmup)))·(lr − min_lr)   otherwise
//! ```

#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub lr: f64,
    pub min_lr: f64,
    pub warmup: u64,
    pub steps: u64,
}

impl Schedule {
    pub fn at(&self, step: u64) -> f64 {
        if step < self.warmup {
            return self.lr * (step + 1) as f64 / (self.warmup + 1) as f64;
        }
        if step >= self.steps || self.steps <= self.warmup {
            return self.min_lr;
        }
        let ratio = (step - self.warmup) as f64 / (self.steps - self.warmup) as f64;
        let coeff = 0.5 * (1.0 + (std::f64::consts::PI * ratio).cos());
        self.min_lr + coeff * (self.lr - self.min_lr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_up_then_decays_to_min() {
        let s = Schedule {
            lr: 1.0,
            min_lr: 0.1,
            warmup: 9,
            steps: 109,
        };
        assert!((s.at(0) - 0.1).abs() < 1e-12);
        assert!((s.at(8) - 0.9).abs() < 1e-12);
        assert!((s.at(9) - 1.0).abs() < 1e-12);
        assert!((s.at(59) - 0.55).abs() < 1e-12);
        assert!((s.at(109) - 0.1).abs() < 1e-12);
        for step in 9..108 {
            assert!(s.at(step + 1) <= s.at(step));
        }
    }
}
