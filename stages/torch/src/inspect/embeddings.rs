//! The embedding space: every token's embedding projected on the two principal components of
//! the embedding matrix, and a token's nearest neighbours by cosine similarity.

use serde::Serialize;
use tch::{Kind, Tensor};

use super::{InspectError, Inspector, TokenInfo};

#[derive(Debug, Serialize)]
pub struct Neighbour {
    pub id: u32,
    pub text: String,
    pub cosine: f64,
}

#[derive(Debug, Serialize)]
pub struct EmbeddingView {
    /// `[id] → (pc1, pc2)` for every token of the vocabulary.
    pub points: Vec<[f32; 2]>,
    pub texts: Vec<String>,
    /// Share of the embeddings' variance along each of the two components.
    pub explained: [f64; 2],
    /// The token asked about, and its nearest neighbours (most similar first).
    pub token: Option<TokenInfo>,
    pub neighbours: Vec<Neighbour>,
}

pub fn view(
    inspector: &Inspector,
    token: Option<&str>,
    neighbours: usize,
) -> Result<EmbeddingView, InspectError> {
    let _guard = tch::no_grad_guard();
    let e = inspector.model().token_embeddings().to_kind(Kind::Float); // (V, C)
    let centered = &e - e.mean_dim(0, true, Kind::Float);
    // centered = U·diag(s)·Vᵀ: the columns of V are the principal directions.
    let (_, s, v) = centered.svd(true, true);
    let projected = centered.matmul(&v.narrow(1, 0, 2)); // (V, 2)
    let rows = super::nested2(&projected);
    let var = &s * &s;
    let total = var
        .sum(Kind::Float)
        .double_value(&[])
        .max(f64::MIN_POSITIVE);
    let explained = [
        var.double_value(&[0]) / total,
        var.double_value(&[1]) / total,
    ];
    let vocab = rows.len();
    let texts = (0..vocab as u32)
        .map(|id| inspector.token(id).text)
        .collect();
    let (token, near) = match token {
        None => (None, Vec::new()),
        Some(text) => {
            let ids = inspector.tok.encode(text);
            let [id] = ids.as_slice() else {
                return Err(InspectError::NotAToken(text.to_string()));
            };
            let id = *id;
            let row = e.get(i64::from(id)).unsqueeze(0); // (1, C)
            let sims = Tensor::cosine_similarity(&e, &row, 1, 1e-8); // (V,)
            let k = (neighbours + 1).min(vocab) as i64;
            let (values, indices) = sims.topk(k, 0, true, true);
            let values = Vec::<f32>::try_from(&values).unwrap_or_default();
            let indices = Vec::<i64>::try_from(&indices).unwrap_or_default();
            let near = values
                .into_iter()
                .zip(indices)
                .filter(|&(_, j)| j != i64::from(id))
                .take(neighbours)
                .map(|(c, j)| Neighbour {
                    id: j as u32,
                    text: inspector.token(j as u32).text,
                    cosine: f64::from(c),
                })
                .collect();
            (Some(inspector.token(id)), near)
        }
    };
    Ok(EmbeddingView {
        points: rows.into_iter().map(|r| [r[0], r[1]]).collect(),
        texts,
        explained,
        token,
        neighbours: near,
    })
}
