//! Exact numeric helpers behind [`super`]: decoding IEEE 754-2008 BID
//! Decimal128 values, comparing any two BSON numbers exactly, and adding
//! numbers into a Decimal128 result.
//!
//! bson 2.15 only hands out the sixteen raw bytes of a Decimal128, yet
//! MongoDB compares `NumberDecimal("0.1")` with the double `0.1` by their true
//! values (the double is slightly larger). Getting that right needs exact
//! arithmetic on numbers far wider than `u128`, so this file carries a tiny
//! unsigned big integer sized for the job (at most ~41 000 bits, reached only
//! when two decimals with extreme exponents sit next to each other).

use std::cmp::Ordering;

use bson::{Bson, Decimal128};

/// Exponent bias and limits of Decimal128 (IEEE 754-2008, BID encoding).
const BIAS: i32 = 6176;
const MAX_EXP: i32 = 6111;
const MIN_EXP: i32 = -6176;
const MAX_DIGITS: usize = 34;

/// A decoded Decimal128.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Dec {
    NaN,
    Inf {
        neg: bool,
    },
    /// `(-1)^neg * coef * 10^exp`; a non-canonical coefficient decodes to 0 as
    /// the BID specification requires.
    Finite {
        neg: bool,
        coef: u128,
        exp: i32,
    },
}

/// Decodes the little-endian BID bytes bson keeps for a Decimal128.
pub(crate) fn decode(d: &Decimal128) -> Dec {
    let v = u128::from_le_bytes(d.bytes());
    let neg = (v >> 127) == 1;
    let combination = (v >> 122) & 0x1f;
    if combination == 0x1f {
        return Dec::NaN;
    }
    if combination == 0x1e {
        return Dec::Inf { neg };
    }
    let (biased, coef) = if (v >> 125) & 0b11 == 0b11 {
        // The "11" form implies a coefficient of at least 2^113, which is
        // always above 10^34 - 1 and therefore non-canonical: the value is 0.
        (((v >> 111) & 0x3fff) as i32, 0)
    } else {
        let coef = v & ((1u128 << 113) - 1);
        let max = 10u128.pow(MAX_DIGITS as u32) - 1;
        (
            ((v >> 113) & 0x3fff) as i32,
            if coef > max { 0 } else { coef },
        )
    };
    Dec::Finite {
        neg,
        coef,
        exp: biased - BIAS,
    }
}

/// Any BSON number as an exact value: `(-1)^neg * mant * 10^e10 * 2^e2`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Num {
    NaN,
    NegInf,
    Fin {
        neg: bool,
        mant: u128,
        e10: i32,
        e2: i32,
    },
    PosInf,
}

impl Num {
    /// `None` for non-numeric values.
    pub(crate) fn of(v: &Bson) -> Option<Num> {
        Some(match v {
            Bson::Int32(i) => Num::int(i64::from(*i)),
            Bson::Int64(i) => Num::int(*i),
            Bson::Double(d) => Num::of_f64(*d),
            Bson::Decimal128(d) => match decode(d) {
                Dec::NaN => Num::NaN,
                Dec::Inf { neg: true } => Num::NegInf,
                Dec::Inf { neg: false } => Num::PosInf,
                Dec::Finite { neg, coef, exp } => Num::Fin {
                    neg,
                    mant: coef,
                    e10: exp,
                    e2: 0,
                },
            },
            _ => return None,
        })
    }

    fn int(i: i64) -> Num {
        Num::Fin {
            neg: i < 0,
            mant: u128::from(i.unsigned_abs()),
            e10: 0,
            e2: 0,
        }
    }

    pub(crate) fn of_f64(d: f64) -> Num {
        if d.is_nan() {
            return Num::NaN;
        }
        if d.is_infinite() {
            return if d < 0.0 { Num::NegInf } else { Num::PosInf };
        }
        let bits = d.to_bits();
        let biased = ((bits >> 52) & 0x7ff) as i32;
        let frac = bits & ((1u64 << 52) - 1);
        let (mant, e2) = if biased == 0 {
            (frac, -1074)
        } else {
            (frac | (1u64 << 52), biased - 1075)
        };
        Num::Fin {
            neg: d.is_sign_negative(),
            mant: u128::from(mant),
            e10: 0,
            e2,
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Num::NaN => 0,
            Num::NegInf => 1,
            Num::Fin { .. } => 2,
            Num::PosInf => 3,
        }
    }
}

/// MongoDB's numeric order: NaN equals NaN and sorts below every other
/// number (including -Infinity); everything else by exact value, so -0 == 0.
pub(crate) fn cmp_num(a: &Num, b: &Num) -> Ordering {
    match (a, b) {
        (
            Num::Fin {
                neg: na,
                mant: ma,
                e10: xa,
                e2: ya,
            },
            Num::Fin {
                neg: nb,
                mant: mb,
                e10: xb,
                e2: yb,
            },
        ) => {
            let sign = |neg: bool, m: u128| match (m == 0, neg) {
                (true, _) => 0i8,
                (false, true) => -1,
                (false, false) => 1,
            };
            let (sa, sb) = (sign(*na, *ma), sign(*nb, *mb));
            if sa != sb || sa == 0 {
                return sa.cmp(&sb);
            }
            let mag = cmp_magnitude((*ma, *xa, *ya), (*mb, *xb, *yb));
            if sa < 0 {
                mag.reverse()
            } else {
                mag
            }
        }
        _ => a.rank().cmp(&b.rank()),
    }
}

/// Compares `ma * 10^xa * 2^ya` with `mb * 10^xb * 2^yb` (both mantissas
/// non-zero) exactly.
fn cmp_magnitude(a: (u128, i32, i32), b: (u128, i32, i32)) -> Ordering {
    const LOG2_10: f64 = std::f64::consts::LOG2_10;
    let log2 =
        |(m, x, y): (u128, i32, i32)| (m as f64).log2() + f64::from(x) * LOG2_10 + f64::from(y);
    let (la, lb) = (log2(a), log2(b));
    // The estimates are good to far better than one unit, so a gap of two
    // settles the order without building big integers.
    if (la - lb).abs() > 2.0 {
        return la.total_cmp(&lb);
    }
    let (x0, y0) = (a.1.min(b.1), a.2.min(b.2));
    let scaled = |(m, x, y): (u128, i32, i32)| {
        let mut big = Big::from_u128(m);
        big.mul_pow10(x.abs_diff(x0));
        big.shl(y.abs_diff(y0));
        big
    };
    scaled(a).cmp_big(&scaled(b))
}

/// A little-endian unsigned big integer with just the operations needed here.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Big(Vec<u32>);

impl Big {
    pub(crate) fn from_u128(mut v: u128) -> Big {
        let mut limbs = Vec::new();
        while v != 0 {
            limbs.push(v as u32);
            v >>= 32;
        }
        Big(limbs)
    }

    fn is_zero(&self) -> bool {
        self.0.iter().all(|&l| l == 0)
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    fn mul_small(&mut self, m: u32) {
        let mut carry = 0u64;
        for limb in &mut self.0 {
            let v = u64::from(*limb) * u64::from(m) + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        if carry != 0 {
            self.0.push(carry as u32);
        }
    }

    pub(crate) fn mul_pow10(&mut self, mut n: u32) {
        while n >= 9 {
            self.mul_small(1_000_000_000);
            n -= 9;
        }
        if n > 0 {
            self.mul_small(10u32.pow(n));
        }
    }

    fn shl(&mut self, bits: u32) {
        let (words, rest) = ((bits / 32) as usize, bits % 32);
        if rest != 0 {
            let mut carry = 0u32;
            for limb in &mut self.0 {
                let v = (u64::from(*limb) << rest) | u64::from(carry);
                *limb = v as u32;
                carry = (v >> 32) as u32;
            }
            if carry != 0 {
                self.0.push(carry);
            }
        }
        if words > 0 && !self.is_zero() {
            self.0.splice(0..0, std::iter::repeat_n(0, words));
        }
    }

    pub(crate) fn cmp_big(&self, other: &Big) -> Ordering {
        let (mut a, mut b) = (self.clone(), other.clone());
        a.trim();
        b.trim();
        a.0.len()
            .cmp(&b.0.len())
            .then_with(|| a.0.iter().rev().cmp(b.0.iter().rev()))
    }

    fn add(&mut self, other: &Big) {
        let mut carry = 0u64;
        for i in 0..self.0.len().max(other.0.len()) {
            if i == self.0.len() {
                self.0.push(0);
            }
            let v = u64::from(self.0[i]) + u64::from(*other.0.get(i).unwrap_or(&0)) + carry;
            self.0[i] = v as u32;
            carry = v >> 32;
        }
        if carry != 0 {
            self.0.push(carry as u32);
        }
    }

    /// `self - other`; callers guarantee `self >= other`.
    fn sub(&mut self, other: &Big) {
        let mut borrow = 0i64;
        for i in 0..self.0.len() {
            let v = i64::from(self.0[i]) - i64::from(*other.0.get(i).unwrap_or(&0)) - borrow;
            borrow = i64::from(v < 0);
            self.0[i] = (v + (borrow << 32)) as u32;
        }
        self.trim();
    }

    /// Divides in place, returning the remainder. `d` must be non-zero.
    fn div_small(&mut self, d: u64) -> u64 {
        let mut rem = 0u128;
        for limb in self.0.iter_mut().rev() {
            let v = (rem << 32) | u128::from(*limb);
            *limb = (v / u128::from(d)) as u32;
            rem = v % u128::from(d);
        }
        self.trim();
        rem as u64
    }

    fn to_decimal_string(&self) -> String {
        let mut n = self.clone();
        let mut chunks = Vec::new();
        while !n.is_zero() {
            chunks.push(n.div_small(1_000_000_000));
        }
        let mut out = chunks
            .pop()
            .map_or_else(|| "0".to_string(), |c| c.to_string());
        for c in chunks.iter().rev() {
            out.push_str(&format!("{c:09}"));
        }
        out
    }
}

/// Sums numbers into a Decimal128 the way `$sum`/`$avg` do once a decimal
/// is involved, then divides by `divisor` (1 for a plain sum). The exact sum
/// is rounded once to 34 digits (half to even); MongoDB rounds after each
/// decimal addition, which can only differ past the 34th digit.
pub(crate) fn decimal_sum(values: &[Num], divisor: u64) -> Decimal128 {
    let nan = || decimal_from_str("NaN");
    let (mut pos_inf, mut neg_inf) = (false, false);
    let mut terms = Vec::new();
    for v in values {
        match v {
            Num::NaN => return nan(),
            Num::PosInf => pos_inf = true,
            Num::NegInf => neg_inf = true,
            Num::Fin { neg, mant, e10, e2 } => terms.push((*neg, *mant, *e10, *e2)),
        }
    }
    match (pos_inf, neg_inf) {
        (true, true) => return nan(),
        (true, false) => return decimal_from_str("Infinity"),
        (false, true) => return decimal_from_str("-Infinity"),
        (false, false) => {}
    }
    // Express every term as an integer times 10^emin: a power of two 2^-k
    // is 5^k * 10^-k, so binary fractions become exact decimals.
    let dec_exp = |&(_, _, e10, e2): &(bool, u128, i32, i32)| e10 + e2.min(0);
    let emin = terms.iter().map(dec_exp).min().unwrap_or(0);
    let (mut plus, mut minus) = (Big(Vec::new()), Big(Vec::new()));
    for t in &terms {
        let (neg, mant, _, e2) = *t;
        let mut big = Big::from_u128(mant);
        if e2 >= 0 {
            big.shl(e2.unsigned_abs());
        } else {
            for _ in 0..e2.unsigned_abs() {
                big.mul_small(5);
            }
        }
        big.mul_pow10(dec_exp(t).abs_diff(emin));
        if neg {
            minus.add(&big);
        } else {
            plus.add(&big);
        }
    }
    let neg = plus.cmp_big(&minus) == Ordering::Less;
    let mut total = if neg { minus.clone() } else { plus.clone() };
    total.sub(if neg { &plus } else { &minus });
    let mut exp = emin;
    if divisor > 1 {
        // Widen first so that the quotient keeps more than 34 digits.
        total.mul_pow10(40);
        exp -= 40;
        let rem_nonzero = total.div_small(divisor) != 0;
        // An exact quotient takes the preferred exponent (the dividend's),
        // as IEEE 754 division does: 3 / 2 is 1.5, not 1.5000…
        while !rem_nonzero && exp < emin {
            let mut shorter = total.clone();
            if shorter.div_small(10) != 0 {
                break;
            }
            total = shorter;
            exp += 1;
        }
        if rem_nonzero {
            // A sticky 1 in the last place keeps half-way cases rounding right.
            total.mul_small(10);
            total.add(&Big::from_u128(1));
            exp -= 1;
        }
    }
    encode(neg, &total, exp)
}

/// Rounds `(-1)^neg * coef * 10^exp` to a Decimal128 (34 digits, half to
/// even, exponent clamped to the format's range).
fn encode(neg: bool, coef: &Big, mut exp: i32) -> Decimal128 {
    let mut digits = coef.to_decimal_string().into_bytes();
    let mut drop = digits.len().saturating_sub(MAX_DIGITS);
    if exp + (drop as i32) < MIN_EXP {
        drop = usize::try_from(MIN_EXP - exp).unwrap_or(usize::MAX);
    }
    if drop > digits.len() {
        // Rounding into the subnormal range can drop more digits than there
        // are; the missing ones are leading zeros.
        let pad = drop - digits.len();
        digits.splice(0..0, std::iter::repeat_n(b'0', pad));
    }
    if drop > 0 {
        let keep = digits.len().saturating_sub(drop);
        let first_dropped = digits.get(keep).copied().unwrap_or(b'0');
        let sticky = digits.iter().skip(keep + 1).any(|&c| c != b'0');
        digits.truncate(keep);
        let last_odd = digits.last().is_some_and(|c| (c - b'0') % 2 == 1);
        let round_up = first_dropped > b'5' || (first_dropped == b'5' && (sticky || last_odd));
        exp = exp.saturating_add(drop as i32);
        if round_up {
            increment(&mut digits);
            if digits.len() > MAX_DIGITS {
                digits.pop();
                exp += 1;
            }
        }
    }
    let mut text = String::from_utf8(digits).unwrap_or_default();
    if text.is_empty() {
        text.push('0');
    }
    // Too large an exponent: pad the coefficient with zeros if it fits.
    while exp > MAX_EXP && text.len() < MAX_DIGITS && text != "0" {
        text.push('0');
        exp -= 1;
    }
    let sign = if neg { "-" } else { "" };
    if exp > MAX_EXP {
        if text == "0" {
            return decimal_from_str(&format!("{sign}0E+{MAX_EXP}"));
        }
        return decimal_from_str(&format!("{sign}Infinity"));
    }
    decimal_from_str(&format!("{sign}{text}E{exp}"))
}

fn increment(digits: &mut Vec<u8>) {
    for c in digits.iter_mut().rev() {
        if *c == b'9' {
            *c = b'0';
        } else {
            *c += 1;
            return;
        }
    }
    digits.insert(0, b'1');
}

fn decimal_from_str(s: &str) -> Decimal128 {
    // Only well-formed literals reach here; NaN's bit pattern is the fallback.
    s.parse()
        .unwrap_or_else(|_| Decimal128::from_bytes((0x7cu128 << 120).to_le_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal128 {
        s.parse().unwrap()
    }

    fn num(s: &str) -> Num {
        Num::of(&Bson::Decimal128(d(s))).unwrap()
    }

    #[test]
    fn decodes_bid_encodings() {
        assert_eq!(
            decode(&d("1")),
            Dec::Finite {
                neg: false,
                coef: 1,
                exp: 0
            }
        );
        assert_eq!(
            decode(&d("-12.345")),
            Dec::Finite {
                neg: true,
                coef: 12345,
                exp: -3
            }
        );
        assert_eq!(
            decode(&d("9.999999999999999999999999999999999E+6144")),
            Dec::Finite {
                neg: false,
                coef: 9_999_999_999_999_999_999_999_999_999_999_999,
                exp: 6111
            }
        );
        assert_eq!(
            decode(&d("1E-6176")),
            Dec::Finite {
                neg: false,
                coef: 1,
                exp: -6176
            }
        );
        assert_eq!(decode(&d("NaN")), Dec::NaN);
        assert_eq!(decode(&d("-Infinity")), Dec::Inf { neg: true });
        // "11" combination form: coefficient >= 2^113 is non-canonical, so 0.
        let raw = Decimal128::from_bytes(((0b11u128 << 125) | 5).to_le_bytes());
        assert!(matches!(decode(&raw), Dec::Finite { coef: 0, .. }));
        // A coefficient just above 10^34 - 1 is non-canonical too.
        let over = 10u128.pow(34) | (6176u128 << 113);
        let raw = Decimal128::from_bytes(over.to_le_bytes());
        assert!(matches!(
            decode(&raw),
            Dec::Finite {
                coef: 0,
                exp: 0,
                ..
            }
        ));
    }

    #[test]
    fn exact_comparisons_across_representations() {
        use Ordering::*;
        let c = |a: Num, b: Num| cmp_num(&a, &b);
        assert_eq!(c(num("0.1"), Num::of_f64(0.1)), Less); // 0.1 double is 0.1000000000000000055...
        assert_eq!(c(num("0.5"), Num::of_f64(0.5)), Equal);
        assert_eq!(c(num("1.000"), num("1")), Equal);
        assert_eq!(c(num("-0"), Num::of_f64(0.0)), Equal);
        assert_eq!(c(num("1E+400"), Num::of_f64(f64::MAX)), Greater);
        assert_eq!(c(num("-1E+400"), Num::of_f64(f64::MIN)), Less);
        assert_eq!(c(num("1E-6176"), Num::of_f64(5e-324)), Less);
        assert_eq!(
            c(num("9007199254740993"), Num::of_f64(9007199254740992.0)),
            Greater
        );
        assert_eq!(c(num("NaN"), Num::of_f64(f64::NAN)), Equal);
        assert_eq!(c(num("NaN"), Num::NegInf), Less);
        assert_eq!(c(num("Infinity"), Num::of_f64(f64::INFINITY)), Equal);
        assert_eq!(c(num("1E+6111"), num("1000E+6108")), Equal);
        assert_eq!(
            c(
                num("123456789012345678901234567890123E-40"),
                num("1.23456789012345678901234567890124E-8")
            ),
            Less
        );
    }

    #[test]
    fn sums_and_averages_round_to_34_digits() {
        let s = |v: &[Num]| decimal_sum(v, 1).to_string();
        assert_eq!(s(&[num("0.1"), num("0.2")]), "0.3");
        assert_eq!(s(&[num("1"), Num::of(&Bson::Int64(2)).unwrap()]), "3");
        // A double enters with its exact binary value rounded to 34 digits
        // (MongoDB's kRoundTo34Digits), hence the full-width coefficient.
        assert_eq!(
            s(&[num("1"), Num::of_f64(0.5)]),
            "1.500000000000000000000000000000000"
        );
        assert_eq!(
            s(&[Num::of_f64(0.1)]),
            "0.1000000000000000055511151231257827"
        );
        assert_eq!(s(&[num("1"), num("-3")]), "-2");
        assert_eq!(s(&[num("NaN"), num("1")]), "NaN");
        assert_eq!(s(&[num("Infinity"), num("-Infinity")]), "NaN");
        assert_eq!(s(&[num("Infinity"), num("1")]), "Infinity");
        assert_eq!(
            s(&[num("9999999999999999999999999999999999"), num("1")]),
            "1.000000000000000000000000000000000E+34"
        );
        assert_eq!(decimal_sum(&[num("1"), num("2")], 2).to_string(), "1.5");
        let max = num("9.999999999999999999999999999999999E+6144");
        assert_eq!(decimal_sum(&[max, max], 1).to_string(), "Infinity");
        assert_eq!(decimal_sum(&[num("3E-6176")], 2).to_string(), "2E-6176");
        assert_eq!(decimal_sum(&[num("1E-6176")], 2).to_string(), "0E-6176");
        assert_eq!(
            decimal_sum(&[num("1E+6111"), Num::of_f64(5e-324)], 1).to_string(),
            "1.000000000000000000000000000000000E+6111"
        );
        assert_eq!(
            decimal_sum(&[num("1")], 3).to_string(),
            "0.3333333333333333333333333333333333"
        );
        assert_eq!(
            decimal_sum(&[num("2")], 3).to_string(),
            "0.6666666666666666666666666666666667"
        );
    }
}
