//! Preferences as directions in reward space (arXiv 2402.18571): attributes, unit weight
//! vectors, the weighted reward R = v · r, presets, rankings under a direction and the angles at
//! which rankings flip, and the HelpSteer scale. Pure functions only.

use serde::{Deserialize, Serialize};

/// The attribute the dial's x axis weighs by default.
pub const HELPFULNESS: &str = "helpsteer-helpfulness";
/// The attribute the dial's y axis weighs by default.
pub const VERBOSITY: &str = "helpsteer-verbosity";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PreferenceError {
    #[error("unknown attribute {name:?}; attributes are: {}", known.join(", "))]
    UnknownAttribute { name: String, known: Vec<String> },
    #[error("attribute {name:?} is ambiguous: it could be {}", candidates.join(" or "))]
    Ambiguous {
        name: String,
        candidates: Vec<String>,
    },
    #[error("bad weight {0:?}: expected name=number")]
    BadWeight(String),
    #[error("the weights are all zero: a direction needs at least one non-zero weight")]
    Zero,
    #[error("a weight or angle must be a finite number")]
    NotFinite,
    #[error("the dial's two axes must be two different attributes, not {0:?} twice")]
    SameAxes(String),
    #[error("bad axes {0:?}: expected two attribute names, x,y")]
    BadAxes(String),
    #[error("this model has one output: there is no plane of two attributes to turn in")]
    NoPlane,
}

/// A user's preference, before it is resolved against a model's attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// v = (cos θ, sin θ) over the plane of two attributes, θ in degrees: `axes` (x, y) by
    /// name, or the model's default plane (helpfulness × verbosity where it has them).
    Angle {
        degrees: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        axes: Option<(String, String)>,
    },
    /// Any weights by attribute name; normalised to unit length when resolved.
    Weights { weights: Vec<(String, f64)> },
}

impl Default for Direction {
    fn default() -> Self {
        Direction::angle(0.0)
    }
}

impl Direction {
    /// θ in the model's default plane.
    pub fn angle(degrees: f64) -> Self {
        Direction::Angle {
            degrees,
            axes: None,
        }
    }

    /// The plane an angle turns in: its own axes, else the model's default plane.
    pub fn plane(&self, labels: &[String]) -> Result<(usize, usize), PreferenceError> {
        match self {
            Direction::Angle {
                axes: Some((x, y)), ..
            } => axes_plane(labels, x, y),
            _ => plane(labels),
        }
    }

    /// The unit weight vector over `labels` (one weight per model output).
    pub fn resolve(&self, labels: &[String]) -> Result<Vec<f64>, PreferenceError> {
        match self {
            Direction::Angle { degrees, .. } => {
                if !degrees.is_finite() {
                    return Err(PreferenceError::NotFinite);
                }
                let (x, y) = self.plane(labels)?;
                Ok(angle_weights(labels.len(), x, y, *degrees))
            }
            Direction::Weights { .. } => normalise(&raw_weights(self, labels)?),
        }
    }

    /// A short human description: `θ = -15°`, `θ = 30° over correctness × verbosity` or
    /// `correctness=0.71, verbosity=-0.71`.
    pub fn describe(&self) -> String {
        match self {
            Direction::Angle {
                degrees,
                axes: None,
            } => format!("θ = {}°", fmt_angle(*degrees)),
            Direction::Angle {
                degrees,
                axes: Some((x, y)),
            } => format!(
                "θ = {}° over {} × {}",
                fmt_angle(*degrees),
                short_name(x),
                short_name(y)
            ),
            Direction::Weights { weights } => weights
                .iter()
                .map(|(n, w)| format!("{}={w:.2}", short_name(n)))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

/// An angle in degrees without a trailing `.0` when it is whole.
pub fn fmt_angle(deg: f64) -> String {
    if (deg - deg.round()).abs() < 1e-9 {
        format!("{}", deg.round() as i64)
    } else {
        format!("{deg:.1}")
    }
}

/// The attribute name without its dataset prefix (`helpsteer-`, `ultrafeedback-`).
pub fn short_name(name: &str) -> &str {
    name.split_once('-').map_or(name, |(_, rest)| rest)
}

/// The attribute name with its dataset abbreviated (`hs helpfulness`, `uf helpfulness`), for
/// places that show names without the dataset headings.
pub fn qualified_name(name: &str) -> String {
    match name.split_once('-') {
        Some(("helpsteer", rest)) => format!("hs {rest}"),
        Some(("ultrafeedback", rest)) => format!("uf {rest}"),
        Some(("beavertails", rest)) => format!("bt {rest}"),
        Some(("prometheus", rest)) => format!("pm {rest}"),
        Some(("argilla", rest)) => format!("ar {rest}"),
        Some(("code", rest)) => format!("code {rest}"),
        _ => name.to_string(),
    }
}

/// A dataset's name as the bars head its group (`helpsteer` → `HelpSteer`).
pub fn dataset_name(prefix: &str) -> String {
    match prefix {
        "helpsteer" => "HelpSteer".into(),
        "ultrafeedback" => "UltraFeedback".into(),
        "beavertails" => "BeaverTails".into(),
        "prometheus" => "Prometheus".into(),
        "argilla" => "Argilla".into(),
        "code" => "Code".into(),
        other => other.to_string(),
    }
}

/// Whether an attribute is on the HelpSteer 0–4 scale when converted.
pub fn is_helpsteer(name: &str) -> bool {
    name.starts_with("helpsteer-")
}

/// The model's 0–100 score on the HelpSteer 0–4 scale: (score − 10) / 20.
pub fn helpsteer_scale(score: f64) -> f64 {
    (score - 10.0) / 20.0
}

/// The unit vector (cos θ, sin θ) placed on attributes `x` and `y` of an `n`-vector.
pub fn angle_weights(n: usize, x: usize, y: usize, degrees: f64) -> Vec<f64> {
    let (s, c) = degrees.to_radians().sin_cos();
    let mut v = vec![0.0; n];
    v[x] += c;
    v[y] += s;
    v
}

/// The angle (degrees, in (−180, 180]) of the direction (wx, wy) in the dial's plane.
pub fn angle_of(wx: f64, wy: f64) -> f64 {
    wy.atan2(wx).to_degrees()
}

/// Scales a vector to unit length. The vector is first divided by its largest |w|, so that
/// squares of huge weights (1e308) do not overflow and those of tiny ones (1e-200) do not
/// vanish.
pub fn normalise(v: &[f64]) -> Result<Vec<f64>, PreferenceError> {
    if v.iter().any(|x| !x.is_finite()) {
        return Err(PreferenceError::NotFinite);
    }
    let largest = v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    if largest == 0.0 {
        return Err(PreferenceError::Zero);
    }
    let scaled: Vec<f64> = v.iter().map(|x| x / largest).collect();
    let norm = scaled.iter().map(|x| x * x).sum::<f64>().sqrt();
    Ok(scaled.iter().map(|x| x / norm).collect())
}

/// R = v · r.
pub fn weighted(weights: &[f64], scores: &[f32]) -> f64 {
    weights.iter().zip(scores).map(|(w, s)| w * *s as f64).sum()
}

/// An f32 as the f64 with the same shortest decimal form, so JSON shows `68.99269`, not
/// `68.99269104003906`; every score written to a file goes through it.
pub fn shortest(v: f32) -> f64 {
    format!("{v}").parse().unwrap_or(v as f64)
}

/// A candidate's R = v · r under the unit direction `unit`: the one function every R shown
/// or written comes from. `None` when the direction and the scores differ in length (a
/// direction for another model) or the result is not a finite number.
pub fn reward(unit: &[f64], scores: &[f32]) -> Option<f64> {
    if unit.len() != scores.len() {
        return None;
    }
    Some(weighted(unit, scores)).filter(|r| r.is_finite())
}

/// How a unit direction lies in the plane of two attributes (the dial's plane).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PlaneFit {
    /// All of the direction is in the plane, at this angle: R is the projection onto it.
    Inside { degrees: f64 },
    /// Part of the direction (of this length, < 1) is in the plane; R also weighs other
    /// attributes, so no projection in the plane is R.
    Partly { degrees: f64, share: f64 },
    /// None of the direction is in the plane.
    Outside,
}

impl PlaneFit {
    /// The angle at which R equals the projection, when there is one.
    pub fn exact_degrees(self) -> Option<f64> {
        match self {
            PlaneFit::Inside { degrees } => Some(degrees),
            _ => None,
        }
    }
}

/// How the unit direction `unit` lies in the plane of attributes `x` and `y`.
pub fn plane_fit(unit: &[f64], x: usize, y: usize) -> PlaneFit {
    let (wx, wy) = (
        unit.get(x).copied().unwrap_or(0.0),
        unit.get(y).copied().unwrap_or(0.0),
    );
    let share = wx.hypot(wy);
    let rest: f64 = unit
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != x && *i != y)
        .map(|(_, w)| w * w)
        .sum();
    if share == 0.0 || !share.is_finite() {
        PlaneFit::Outside
    } else if rest <= 1e-12 {
        PlaneFit::Inside {
            degrees: angle_of(wx, wy),
        }
    } else {
        PlaneFit::Partly {
            degrees: angle_of(wx, wy),
            share,
        }
    }
}

/// The dial's plane (x, y): helpfulness × verbosity where the model has them (DPA, ArmoRM),
/// else its first two attributes; a one-output model has none.
pub fn plane(labels: &[String]) -> Result<(usize, usize), PreferenceError> {
    match (
        find_attribute(labels, HELPFULNESS),
        find_attribute(labels, VERBOSITY),
    ) {
        (Ok(x), Ok(y)) => Ok((x, y)),
        _ if labels.len() >= 2 => Ok((0, 1)),
        _ if labels.len() == 1 => Err(PreferenceError::NoPlane),
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

/// The plane of the attributes named `x` and `y` (full names or unique suffixes).
pub fn axes_plane(labels: &[String], x: &str, y: &str) -> Result<(usize, usize), PreferenceError> {
    let (xi, yi) = (find_attribute(labels, x)?, find_attribute(labels, y)?);
    if xi == yi {
        return Err(PreferenceError::SameAxes(labels[xi].clone()));
    }
    Ok((xi, yi))
}

/// Parses `--axes x,y` into two attribute names (resolved later, against the model's labels).
pub fn parse_axes(spec: &str) -> Result<(String, String), PreferenceError> {
    match spec
        .split(',')
        .map(str::trim)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [x, y] if !x.is_empty() && !y.is_empty() => Ok((x.to_string(), y.to_string())),
        _ => Err(PreferenceError::BadAxes(spec.to_string())),
    }
}

/// The names of the plane `(x, y)`'s axes as the charts show them (`helpfulness`,
/// `verbosity`).
pub fn plane_names(labels: &[String], (x, y): (usize, usize)) -> Option<(String, String)> {
    if x >= labels.len() || y >= labels.len() {
        return None;
    }
    Some((
        short_name(&labels[x]).to_string(),
        short_name(&labels[y]).to_string(),
    ))
}

/// Finds an attribute by its full name, or by a suffix that names exactly one attribute
/// (`correctness`, `verbosity`, `overall_score`).
pub fn find_attribute(labels: &[String], name: &str) -> Result<usize, PreferenceError> {
    let name = name.trim();
    if let Some(i) = labels.iter().position(|l| l == name) {
        return Ok(i);
    }
    let matches: Vec<usize> = labels
        .iter()
        .enumerate()
        .filter(|(_, l)| short_name(l) == name)
        .map(|(i, _)| i)
        .collect();
    match matches.as_slice() {
        [i] => Ok(*i),
        [] => Err(PreferenceError::UnknownAttribute {
            name: name.to_string(),
            known: labels.to_vec(),
        }),
        many => Err(PreferenceError::Ambiguous {
            name: name.to_string(),
            candidates: many.iter().map(|&i| labels[i].clone()).collect(),
        }),
    }
}

/// Parses `name=w,name=w` into weights (names resolved later, against the model's labels).
pub fn parse_weights(spec: &str) -> Result<Vec<(String, f64)>, PreferenceError> {
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, w) = part
            .split_once('=')
            .ok_or_else(|| PreferenceError::BadWeight(part.to_string()))?;
        let w: f64 = w
            .trim()
            .parse()
            .map_err(|_| PreferenceError::BadWeight(part.to_string()))?;
        if !w.is_finite() {
            return Err(PreferenceError::NotFinite);
        }
        out.push((name.trim().to_string(), w));
    }
    if out.is_empty() {
        return Err(PreferenceError::BadWeight(spec.to_string()));
    }
    Ok(out)
}

/// A named direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preset {
    pub name: String,
    pub direction: Direction,
}

/// Indices of `rewards` from best to worst; `None` (not yet scored) last; ties keep order.
pub fn ranking(rewards: &[Option<f64>]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..rewards.len()).collect();
    idx.sort_by(|&a, &b| match (rewards[a], rewards[b]) {
        (Some(x), Some(y)) => y.total_cmp(&x),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    idx
}

/// Where two candidates swap places as θ turns: R_i(θ) = R_j(θ).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Crossing {
    pub degrees: f64,
    pub a: usize,
    pub b: usize,
}

/// Every θ in (−90°, 90°) at which two candidates, given as (x, y) scores in the dial's plane,
/// swap rank, sorted by θ. With R = cos θ·x + sin θ·y, candidates i and j tie where
/// tan θ = −Δx/Δy: once in that open interval when Δy ≠ 0, never when Δy = 0.
pub fn crossings(points: &[(f64, f64)]) -> Vec<Crossing> {
    let mut out = Vec::new();
    for a in 0..points.len() {
        for b in a + 1..points.len() {
            let dx = points[a].0 - points[b].0;
            let dy = points[a].1 - points[b].1;
            if dy == 0.0 {
                continue;
            }
            let degrees = (-dx / dy).atan().to_degrees();
            if degrees > -90.0 && degrees < 90.0 {
                out.push(Crossing { degrees, a, b });
            }
        }
    }
    out.sort_by(|x, y| x.degrees.total_cmp(&y.degrees));
    out
}

/// R(θ) for a point in the dial's plane: the same number as [`reward`] of the scores under
/// the angle direction θ, without building the ten-vector.
pub fn reward_at(point: (f64, f64), degrees: f64) -> f64 {
    let (s, c) = degrees.to_radians().sin_cos();
    c * point.0 + s * point.1
}

/// An angle in degrees folded into (−180°, 180°].
pub fn wrap_degrees(deg: f64) -> f64 {
    let d = deg.rem_euclid(360.0);
    if d > 180.0 {
        d - 360.0
    } else {
        d
    }
}

/// The foot of the perpendicular from `point` onto the line through the origin at `degrees`:
/// (R · cos θ, R · sin θ), where R is the point's reward under that direction.
pub fn projection(point: (f64, f64), degrees: f64) -> (f64, f64) {
    let r = reward_at(point, degrees);
    let (s, c) = degrees.to_radians().sin_cos();
    (r * c, r * s)
}

/// R(θ) sampled every `step` degrees over [from, to], both ends included.
pub fn sweep(point: (f64, f64), from: f64, to: f64, step: f64) -> Vec<(f64, f64)> {
    if step.is_nan() || step <= 0.0 || from > to {
        return Vec::new();
    }
    let n = ((to - from) / step).floor() as usize;
    let mut out: Vec<(f64, f64)> = (0..=n)
        .map(|i| {
            let d = from + i as f64 * step;
            (d, reward_at(point, d))
        })
        .collect();
    if out.last().is_some_and(|(d, _)| (to - d).abs() > 1e-9) {
        out.push((to, reward_at(point, to)));
    }
    out
}

/// The weights of `direction` as a raw vector over `labels` (not normalised), for editing.
pub fn raw_weights(direction: &Direction, labels: &[String]) -> Result<Vec<f64>, PreferenceError> {
    match direction {
        Direction::Angle { .. } => direction.resolve(labels),
        Direction::Weights { weights } => {
            let mut v = vec![0.0; labels.len()];
            for (name, w) in weights {
                if !w.is_finite() {
                    return Err(PreferenceError::NotFinite);
                }
                v[find_attribute(labels, name)?] += w;
            }
            Ok(v)
        }
    }
}

/// A weight vector over `labels` as a [`Direction`], leaving out zero weights.
pub fn weights_direction(labels: &[String], weights: &[f64]) -> Direction {
    Direction::Weights {
        weights: labels
            .iter()
            .zip(weights)
            .filter(|(_, w)| **w != 0.0)
            .map(|(l, w)| (l.clone(), *w))
            .collect(),
    }
}

/// The best candidate on each stretch of θ over [from, to]: (start, end, index) runs, which
/// is where best-of-n picks a different response.
pub fn leaders(points: &[(f64, f64)], from: f64, to: f64) -> Vec<(f64, f64, usize)> {
    if points.is_empty() || from >= to {
        return Vec::new();
    }
    let mut cuts: Vec<f64> = crossings(points)
        .into_iter()
        .map(|c| c.degrees)
        .filter(|d| *d > from && *d < to)
        .collect();
    cuts.insert(0, from);
    cuts.push(to);
    let mut runs: Vec<(f64, f64, usize)> = Vec::new();
    for w in cuts.windows(2) {
        let mid = (w[0] + w[1]) / 2.0;
        let best = (0..points.len())
            .max_by(|&i, &j| {
                reward_at(points[i], mid)
                    .total_cmp(&reward_at(points[j], mid))
                    .then(j.cmp(&i))
            })
            .unwrap_or(0);
        match runs.last_mut() {
            Some(last) if last.2 == best => last.1 = w[1],
            _ => runs.push((w[0], w[1], best)),
        }
    }
    runs
}

#[cfg(test)]
mod tests;
