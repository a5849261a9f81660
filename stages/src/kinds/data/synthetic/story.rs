//! Short stories from a small grammar over a tracked world: people move between places and pick
//! up, hand over and put down objects. Two closing paragraphs follow the events: "At the start:"
//! restates where everyone and everything began, in shuffled order, so predicting it means
//! finding each subject's opening sentence again; "In the end:" states facts that only the whole
//! story determines (who holds what, where it went), so a model has to carry information across
//! many tokens to predict them.
//!
//! The questions (`instructions`, `preferences`) ask where a person or an object was when the
//! story began: the answer is stated by exactly one sentence of the story, among later sentences
//! that name the same person or object in other places. docs/finetuning.md says why these and
//! not the end state.

use super::rng::Rng;

const PEOPLE: &[&str] = &[
    "Ada", "Ben", "Cleo", "Dan", "Eve", "Finn", "Gus", "Hana", "Ivy", "Jon", "Kai", "Lena", "Milo",
    "Nora", "Omar", "Pia",
];
const OBJECTS: &[&str] = &[
    "apple", "key", "book", "ball", "lamp", "coin", "hat", "map", "cup", "kite", "ring", "box",
];
const ADJECTIVES: &[&str] = &["red", "blue", "green", "yellow", "small", "old", "shiny"];
const PLACES: &[&str] = &[
    "kitchen", "garden", "library", "barn", "attic", "park", "harbor", "school", "market", "cellar",
];
const OPENINGS: &[&str] = &[
    "One morning",
    "Early one day",
    "On a quiet afternoon",
    "Late in the evening",
    "On a rainy day",
];

/// Where an object is: with a person, or lying in a place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holder {
    Person(usize),
    Place(usize),
}

/// A generated story and the world it leaves behind.
#[derive(Debug, Clone)]
pub struct Story {
    pub sentences: Vec<String>,
    people: Vec<&'static str>,
    /// Index into `people` → place index, now and when the story began.
    at: Vec<usize>,
    start_at: Vec<usize>,
    objects: Vec<String>,
    holders: Vec<Holder>,
    /// Index into `objects` → the place it lay in when the story began.
    start_place: Vec<usize>,
    places: Vec<&'static str>,
    /// The order in which the closing recap restates where everyone and everything began:
    /// people first (`0..people`), then objects.
    recap: Vec<Subject>,
}

/// Someone or something a starting fact is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subject {
    Person(usize),
    Object(usize),
}

/// A question about the story, its correct answer and a plausible wrong one.
#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    pub question: String,
    pub answer: String,
    pub wrong: String,
}

impl Story {
    /// A story of 2–3 people, 2–3 objects and 3–4 places, with 4–9 events.
    pub fn generate(rng: &mut Rng) -> Story {
        Story::with_events(rng, 4, 9)
    }

    /// A story as [`Story::generate`]'s, with `min..=max` events after the opening sentences.
    pub fn with_events(rng: &mut Rng, min: usize, max: usize) -> Story {
        let n_people = rng.range(2, 3);
        let people = rng.sample(PEOPLE, n_people);
        let n_places = rng.range(3, 4);
        let places = rng.sample(PLACES, n_places);
        let n_objects = rng.range(2, 3);
        let kinds = rng.sample(OBJECTS, n_objects);
        let objects: Vec<String> = kinds
            .iter()
            .map(|o| format!("{} {o}", rng.pick(ADJECTIVES)))
            .collect();
        let at: Vec<usize> = people.iter().map(|_| rng.below(places.len())).collect();
        let start_place: Vec<usize> = objects.iter().map(|_| rng.below(places.len())).collect();
        let mut s = Story {
            sentences: Vec::new(),
            start_at: at.clone(),
            at,
            holders: start_place.iter().map(|&l| Holder::Place(l)).collect(),
            start_place,
            people,
            objects,
            places,
            recap: Vec::new(),
        };
        let opening = rng.pick(OPENINGS);
        for p in 0..s.people.len() {
            let line = if p == 0 {
                format!(
                    "{opening}, {} was in the {}.",
                    s.people[p], s.places[s.at[p]]
                )
            } else {
                format!("{} was in the {}.", s.people[p], s.places[s.at[p]])
            };
            s.sentences.push(line);
        }
        for o in 0..s.objects.len() {
            let Holder::Place(place) = s.holders[o] else {
                continue;
            };
            s.sentences.push(format!(
                "There was a {} in the {}.",
                s.objects[o], s.places[place]
            ));
        }
        let events = rng.range(min, max);
        for _ in 0..events {
            s.event(rng);
        }
        let subjects: Vec<Subject> = (0..s.people.len())
            .map(Subject::Person)
            .chain((0..s.objects.len()).map(Subject::Object))
            .collect();
        s.recap = rng.sample(&subjects, subjects.len());
        s
    }

    /// One event that the current state allows; falls back to a move, which always is.
    fn event(&mut self, rng: &mut Rng) {
        let p = rng.below(self.people.len());
        let here = self.at[p];
        let name = self.people[p];
        match rng.below(4) {
            0 => {
                // Pick up something lying here.
                if let Some(o) = self.first_object(|h| h == Holder::Place(here)) {
                    self.holders[o] = Holder::Person(p);
                    self.sentences
                        .push(format!("{name} picked up the {}.", self.objects[o]));
                    return;
                }
            }
            1 => {
                // Hand something over to someone in the same place.
                let held = self.first_object(|h| h == Holder::Person(p));
                let other = (0..self.people.len()).find(|&q| q != p && self.at[q] == here);
                if let (Some(o), Some(q)) = (held, other) {
                    self.holders[o] = Holder::Person(q);
                    self.sentences.push(format!(
                        "{name} gave the {} to {}.",
                        self.objects[o], self.people[q]
                    ));
                    return;
                }
            }
            2 => {
                // Put something down here.
                if let Some(o) = self.first_object(|h| h == Holder::Person(p)) {
                    self.holders[o] = Holder::Place(here);
                    self.sentences.push(format!(
                        "{name} left the {} in the {}.",
                        self.objects[o], self.places[here]
                    ));
                    return;
                }
            }
            _ => {}
        }
        let to = (here + 1 + rng.below(self.places.len() - 1)) % self.places.len();
        self.at[p] = to;
        let carried = self.first_object(|h| h == Holder::Person(p));
        let line = match carried {
            Some(o) => format!(
                "{name} went to the {}, carrying the {}.",
                self.places[to], self.objects[o]
            ),
            None => format!("{name} went to the {}.", self.places[to]),
        };
        self.sentences.push(line);
    }

    fn first_object(&self, f: impl Fn(Holder) -> bool) -> Option<usize> {
        self.holders.iter().position(|&h| f(h))
    }

    /// Where object `o` is at the end, as a sentence.
    fn object_fact(&self, o: usize, holder: Holder) -> String {
        match holder {
            Holder::Person(p) => format!("{} has the {}.", self.people[p], self.objects[o]),
            Holder::Place(l) => format!("The {} is in the {}.", self.objects[o], self.places[l]),
        }
    }

    /// The story text, closed by a recap of where everyone and everything began (in shuffled
    /// order) and by what became of each object.
    pub fn text(&self) -> String {
        let mut out = self.body();
        out.push_str("\nAt the start:");
        for &subject in &self.recap {
            out.push(' ');
            out.push_str(&self.start_fact(subject, self.start_of(subject)));
        }
        out.push_str("\nIn the end:");
        for (o, &h) in self.holders.iter().enumerate() {
            out.push(' ');
            out.push_str(&self.object_fact(o, h));
        }
        out
    }

    /// The story without its closing facts (what questions are asked about).
    pub fn body(&self) -> String {
        self.sentences.join(" ")
    }

    /// Where a person or an object was when the story began, with the answer and a wrong but
    /// plausible one: where it was at the end when that differs (the confusion of the start
    /// with the end), else another place of the story.
    pub fn question(&self, rng: &mut Rng) -> Question {
        let subject = if rng.below(2) == 0 {
            Subject::Person(rng.below(self.people.len()))
        } else {
            Subject::Object(rng.below(self.objects.len()))
        };
        let (start, end) = match subject {
            Subject::Person(p) => (self.start_at[p], self.at[p]),
            Subject::Object(o) => {
                let end = match self.holders[o] {
                    Holder::Person(p) => self.at[p],
                    Holder::Place(l) => l,
                };
                (self.start_place[o], end)
            }
        };
        let wrong = if end != start {
            end
        } else {
            (start + 1 + rng.below(self.places.len() - 1)) % self.places.len()
        };
        let name = match subject {
            Subject::Person(p) => self.people[p].to_string(),
            Subject::Object(o) => format!("the {}", self.objects[o]),
        };
        Question {
            question: format!("Where was {name} at the start?"),
            answer: self.start_fact(subject, start),
            wrong: self.start_fact(subject, wrong),
        }
    }

    fn start_of(&self, subject: Subject) -> usize {
        match subject {
            Subject::Person(p) => self.start_at[p],
            Subject::Object(o) => self.start_place[o],
        }
    }

    /// "Ada was in the park." / "The red key was in the park."
    fn start_fact(&self, subject: Subject, place: usize) -> String {
        match subject {
            Subject::Person(p) => format!("{} was in the {}.", self.people[p], self.places[place]),
            Subject::Object(o) => {
                format!("The {} was in the {}.", self.objects[o], self.places[place])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closing_facts_follow_the_events() {
        let mut rng = Rng::new(3, 0);
        for _ in 0..200 {
            let s = Story::generate(&mut rng);
            // Replay the sentences and check the closing facts against the replayed state.
            let mut holder: Vec<String> = vec![String::new(); s.objects.len()];
            for line in &s.sentences {
                let first_word = line.split(' ').next().unwrap_or("");
                let last_word = line.trim_end_matches('.').rsplit(' ').next().unwrap_or("");
                for (o, obj) in s.objects.iter().enumerate() {
                    let placed = line.starts_with(&format!("There was a {obj} in the "))
                        || line.contains(&format!("gave the {obj} to "))
                        || line.contains(&format!("left the {obj} in the "));
                    if placed {
                        holder[o] = last_word.to_string();
                    } else if line.ends_with(&format!("picked up the {obj}.")) {
                        holder[o] = first_word.to_string();
                    }
                }
            }
            let text = s.text();
            for (o, h) in holder.iter().enumerate() {
                let fact = if PEOPLE.contains(&h.as_str()) {
                    format!("{h} has the {}.", s.objects[o])
                } else {
                    format!("The {} is in the {h}.", s.objects[o])
                };
                assert!(text.contains(&fact), "{fact} missing from:\n{text}");
            }
        }
    }

    #[test]
    fn the_recap_restates_every_starting_place_in_shuffled_order() {
        let mut rng = Rng::new(13, 0);
        let mut reordered = 0;
        for _ in 0..100 {
            let s = Story::generate(&mut rng);
            let text = s.text();
            let (_, recap) = text.split_once("\nAt the start: ").unwrap();
            let (recap, _) = recap.split_once("\nIn the end:").unwrap();
            for (p, person) in s.people.iter().enumerate() {
                let fact = format!("{person} was in the {}.", s.places[s.start_at[p]]);
                assert!(recap.contains(&fact), "{fact} missing from {recap}");
            }
            for (o, object) in s.objects.iter().enumerate() {
                let fact = format!("The {object} was in the {}.", s.places[s.start_place[o]]);
                assert!(recap.contains(&fact), "{fact} missing from {recap}");
                assert!(s.body().contains(&format!(
                    "There was a {object} in the {}.",
                    s.places[s.start_place[o]]
                )));
            }
            reordered += usize::from(!recap.starts_with(s.people[0]));
        }
        // Not the order of the opening: recalling a fact means finding it by its subject.
        assert!(reordered > 30, "{reordered} of 100");
    }

    #[test]
    fn wrong_answers_differ_from_right_ones() {
        let mut rng = Rng::new(5, 0);
        for _ in 0..200 {
            let s = Story::generate(&mut rng);
            let q = s.question(&mut rng);
            assert_ne!(q.answer, q.wrong, "{q:?}");
        }
    }

    #[test]
    fn the_answer_is_the_one_sentence_that_introduces_the_subject() {
        let mut rng = Rng::new(7, 0);
        let mut distracted = 0;
        for _ in 0..300 {
            let s = Story::generate(&mut rng);
            let q = s.question(&mut rng);
            let body = s.body();
            // "Ada was in the park." / "The red key was in the park."
            let (subject, place) = q
                .answer
                .trim_end_matches('.')
                .split_once(" was in the ")
                .unwrap();
            let introduction = match subject.strip_prefix("The ") {
                Some(object) => format!("There was a {object} in the {place}."),
                None => format!("{subject} was in the {place}."),
            };
            assert_eq!(body.matches(&introduction).count(), 1, "{q:?}\n{body}");
            let wrong_place = q.wrong.trim_end_matches('.').rsplit(' ').next().unwrap();
            assert!(s.places.contains(&wrong_place), "{q:?}");
            let subject_word = subject.rsplit(' ').next().unwrap();
            distracted += usize::from(body.matches(subject_word).count() > 1);
        }
        // More than half the subjects appear again later (moved, picked up, carried): the answer
        // is not simply the sentence that names them.
        assert!(distracted > 150, "{distracted} of 300");
    }

    #[test]
    fn the_question_alone_does_not_give_the_answer() {
        // The best a model that ignores the story can do: answer each question with the answer
        // it most often had in training. On other stories that is right about one time in ten
        // (a place out of ten), far from what reading the story gives.
        use std::collections::HashMap;
        let mut rng = Rng::new(11, 0);
        let mut seen: HashMap<String, HashMap<String, usize>> = HashMap::new();
        for _ in 0..4000 {
            let q = Story::generate(&mut rng).question(&mut rng);
            *seen
                .entry(q.question)
                .or_default()
                .entry(q.answer)
                .or_default() += 1;
        }
        let guess = |question: &str| -> Option<String> {
            let answers = seen.get(question)?;
            let best = answers
                .iter()
                .max_by_key(|(a, n)| (**n, std::cmp::Reverse(*a)))?;
            Some(best.0.clone())
        };
        let trials = 1000;
        let right = (0..trials)
            .filter(|_| {
                let q = Story::generate(&mut rng).question(&mut rng);
                guess(&q.question).as_deref() == Some(q.answer.as_str())
            })
            .count();
        assert!(
            right * 5 < trials,
            "{right} of {trials} right without the story"
        );
    }
}
