//! Counter-based hashing RNG: value i of stream (seed, name) is a pure function of
//! (seed, name, i), computed with integer arithmetic only, so every machine and every
//! generation order gives the same numbers.

/// splitmix64's finalizer: a bijective 64-bit mixer.
#[inline]
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a of a string (names tensors' random streams).
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xCBF2_9CE4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// One named random stream.
#[derive(Clone, Copy, Debug)]
pub struct Stream {
    key: u64,
}

/// Standard deviation of a sum of four uniform integers in 0..65536: sqrt(4·(65536² − 1)/12).
const IRWIN_HALL_SD: f64 = 37_837.227_237_206_48;

impl Stream {
    /// The stream for `name` under `seed`.
    pub fn new(seed: u64, name: &str) -> Stream {
        Stream {
            key: mix(seed ^ mix(fnv1a(name))),
        }
    }

    /// 64 random bits number `i`.
    #[inline]
    pub fn bits(&self, i: u64) -> u64 {
        mix(self
            .key
            .wrapping_add(i.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15)))
    }

    /// Approximately standard-normal value number `i`: a centred, scaled sum of four 16-bit
    /// uniforms (Irwin–Hall, range ±3.46), exact integer arithmetic then one f64 division.
    #[inline]
    pub fn normal(&self, i: u64) -> f64 {
        let h = self.bits(i);
        let s = (h & 0xFFFF) + ((h >> 16) & 0xFFFF) + ((h >> 32) & 0xFFFF) + (h >> 48);
        (s as f64 - 2.0 * 65535.0) / IRWIN_HALL_SD
    }

    /// Fill `out` with trits: about 40% zeros (102/256), 30% −1 (77/256), 30% +1 (77/256).
    /// Element j uses byte j % 8 of `bits(j / 8)`.
    pub fn trits(&self, out: &mut [i8]) {
        for (k, chunk) in out.chunks_mut(8).enumerate() {
            let h = self.bits(k as u64);
            for (j, t) in chunk.iter_mut().enumerate() {
                let b = (h >> (8 * j)) as u8;
                *t = if b < 102 {
                    0
                } else if b < 179 {
                    -1
                } else {
                    1
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_values() {
        // splitmix64 reference: the first output of a generator seeded with 0 is
        // mix(0x9E3779B97F4A7C15) = 0xE220A8397B1DCDAF.
        assert_eq!(mix(0x9E37_79B9_7F4A_7C15), 0xE220_A839_7B1D_CDAF);
        let s = Stream::new(1, "x");
        assert_eq!(s.bits(5), Stream::new(1, "x").bits(5));
        assert_ne!(s.bits(5), Stream::new(2, "x").bits(5));
        assert_ne!(s.bits(5), Stream::new(1, "y").bits(5));
    }

    #[test]
    fn distributions() {
        let s = Stream::new(7, "t");
        let mut t = vec![0i8; 80_000];
        s.trits(&mut t);
        let z = t.iter().filter(|&&x| x == 0).count() as f64 / t.len() as f64;
        let p = t.iter().filter(|&&x| x == 1).count() as f64 / t.len() as f64;
        assert!(
            (z - 0.398).abs() < 0.01 && (p - 0.301).abs() < 0.01,
            "{z} {p}"
        );
        let xs: Vec<f64> = (0..50_000).map(|i| s.normal(i)).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / xs.len() as f64;
        assert!(
            mean.abs() < 0.02 && (var - 1.0).abs() < 0.03,
            "{mean} {var}"
        );
    }
}
