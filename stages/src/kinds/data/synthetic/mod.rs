//! Built-in corpora, deterministic for a seed: `stories`, `instructions` (question → answer
//! about a story) and `preferences` (a question with a preferred and a rejected answer: a near
//! miss, or for a question the story cannot answer, a made-up one).

mod rng;
mod story;

use pipelines::Generator;

/// Events (fewest, most) in the story a question is asked about: fewer than a `stories`
/// story's 4–9, so that a prompt is 60–130 tokens. docs/finetuning.md says why.
const QUESTION_EVENTS: (usize, usize) = (1, 3);

pub use rng::Rng;
pub use story::{Question, Story};

/// `documents` records of `generator`, each a list of fields in [`pipelines::RecordShape`]
/// column order. `stream` separates several synthetic sources under one seed.
pub fn generate(
    generator: Generator,
    documents: usize,
    seed: u64,
    stream: u64,
) -> Vec<Vec<String>> {
    let mut rng = Rng::new(seed, stream);
    (0..documents)
        .map(|_| match generator {
            Generator::Stories => vec![Story::generate(&mut rng).text()],
            Generator::Instructions => {
                let (story, q) = questioned_story(&mut rng, Story::question);
                vec![prompt(&story, &q), q.answer]
            }
            Generator::Preferences => {
                let (story, q) = questioned_story(&mut rng, preference);
                vec![prompt(&story, &q), q.answer, q.wrong]
            }
        })
        .collect()
}

/// A short story and the question `ask` makes of it; stories it has none for are drawn again.
fn questioned_story(
    rng: &mut Rng,
    ask: impl Fn(&Story, &mut Rng) -> Option<Question>,
) -> (Story, Question) {
    loop {
        let story = Story::with_events(rng, QUESTION_EVENTS.0, QUESTION_EVENTS.1);
        if let Some(q) = ask(&story, rng) {
            return (story, q);
        }
    }
}

/// A preference pair's question: for half the stories, when the story allows one, a question
/// it cannot answer (what someone picked up who picked nothing up: "nothing" is preferred to a
/// made-up or misattributed pick-up, which SFT on answerable questions alone teaches);
/// otherwise a question as `instructions` asks it, with a near miss as the rejected answer.
fn preference(story: &Story, rng: &mut Rng) -> Option<Question> {
    if rng.below(2) == 0 {
        story.unanswerable(rng).or_else(|| story.question(rng))
    } else {
        story.question(rng)
    }
}

fn prompt(story: &Story, q: &Question) -> String {
    format!("{}\nQuestion: {}", story.body(), q.question)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_records_other_seed_other_records() {
        for g in [
            Generator::Stories,
            Generator::Instructions,
            Generator::Preferences,
        ] {
            assert_eq!(generate(g, 20, 1, 0), generate(g, 20, 1, 0));
            assert_ne!(generate(g, 20, 1, 0), generate(g, 20, 2, 0));
            assert_ne!(generate(g, 20, 1, 0), generate(g, 20, 1, 1));
        }
    }

    #[test]
    fn records_have_the_shape_of_their_generator() {
        let pairs = generate(Generator::Instructions, 5, 9, 0);
        assert!(pairs
            .iter()
            .all(|r| r.len() == 2 && r[0].contains("\nQuestion: ")));
        let prefs = generate(Generator::Preferences, 5, 9, 0);
        assert!(prefs.iter().all(|r| r.len() == 3 && r[1] != r[2]));
        let stories = generate(Generator::Stories, 5, 9, 0);
        assert!(stories
            .iter()
            .all(|r| r.len() == 1 && r[0].contains("\nIn the end: ")));
    }
}
