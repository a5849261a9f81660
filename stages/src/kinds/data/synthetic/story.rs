//! Short stories from a small grammar over a tracked world: people move between places and pick
//! up, hand over and put down objects. Two closing paragraphs follow the events: "At the start:"
//! restates where everyone and everything began, in shuffled order, so predicting it means
//! finding each subject's opening sentence again; "In the end:" states facts that only the whole
//! story determines (who holds what, where it went), so a model has to carry information across
//! many tokens to predict them.
//!
//! The questions (`instructions`, `preferences`) ask about an event that happens once of its
//! kind in the story — the one move, the one pick-up, the one hand-over or the one put-down —
//! and the answer restates that event in a sentence. Preference data also asks what someone
//! picked up who picked nothing up: the preferred answer says so, the rejected one makes a
//! pick-up up or gives them someone else's. docs/finetuning.md says why these and not
//! where someone was at the start or the end (which a 0.85M-parameter model, on 2 CPU cores,
//! answers about as well as its pretraining lets it find a subject's sentence again: 60 %).

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
    /// The events after the opening sentences, in order (what questions are asked about).
    events: Vec<Event>,
}

/// Something that happened in the story; indices into `people`, `objects` and `places`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Move {
        person: usize,
        from: usize,
        to: usize,
    },
    PickUp {
        person: usize,
        object: usize,
    },
    Give {
        person: usize,
        object: usize,
        to: usize,
    },
    Leave {
        person: usize,
        object: usize,
        place: usize,
    },
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
            events: Vec::new(),
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
                    self.events.push(Event::PickUp {
                        person: p,
                        object: o,
                    });
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
                    self.events.push(Event::Give {
                        person: p,
                        object: o,
                        to: q,
                    });
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
                    self.events.push(Event::Leave {
                        person: p,
                        object: o,
                        place: here,
                    });
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
        self.events.push(Event::Move {
            person: p,
            from: here,
            to,
        });
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

    /// A question about an event that is the only one of its kind in the story (so the kind
    /// alone finds its sentence), its answer — the event restated — and a plausible wrong
    /// answer: the place the person came from, another place of the story, or the object's
    /// noun with another adjective. `None`
    /// when every kind of event happens more than once (ask about another story).
    pub fn question(&self, rng: &mut Rng) -> Option<Question> {
        use std::mem::discriminant;
        let kind_count = |e: &Event| {
            self.events
                .iter()
                .filter(|f| discriminant(*f) == discriminant(e))
                .count()
        };
        let once: Vec<Event> = self
            .events
            .iter()
            .filter(|e| kind_count(e) == 1)
            .copied()
            .collect();
        if once.is_empty() {
            return None;
        }
        // The same kind of thing in another colour or state: only reading the sentence rules
        // it out (the noun is right), and it is the mistake a model half-way through learning
        // to copy makes (the noun copied, the adjective its most frequent one).
        let near_miss = |rng: &mut Rng, o: usize| {
            let (adjective, noun) = self.objects[o].split_once(' ').expect("adjective noun");
            let i = ADJECTIVES
                .iter()
                .position(|a| *a == adjective)
                .expect("known adjective");
            let n = ADJECTIVES.len();
            format!("{} {noun}", ADJECTIVES[(i + 1 + rng.below(n - 1)) % n])
        };
        let other_place = |rng: &mut Rng, l: usize| {
            let n = self.places.len();
            self.places[(l + 1 + rng.below(n - 1)) % n]
        };
        let question = match once[rng.below(once.len())] {
            Event::Move { person, from, to } => {
                let name = self.people[person];
                Question {
                    question: format!("Where did {name} go?"),
                    answer: format!("{name} went to the {}.", self.places[to]),
                    wrong: format!("{name} went to the {}.", self.places[from]),
                }
            }
            Event::PickUp { person, object } => {
                let name = self.people[person];
                Question {
                    question: format!("What did {name} pick up?"),
                    answer: format!("{name} picked up the {}.", self.objects[object]),
                    wrong: format!("{name} picked up the {}.", near_miss(rng, object)),
                }
            }
            Event::Give { person, object, to } => {
                let (name, other) = (self.people[person], self.people[to]);
                Question {
                    question: format!("What did {name} give to {other}?"),
                    answer: format!("{name} gave the {} to {other}.", self.objects[object]),
                    wrong: format!("{name} gave the {} to {other}.", near_miss(rng, object)),
                }
            }
            Event::Leave {
                person,
                object,
                place,
            } => {
                let (name, thing) = (self.people[person], &self.objects[object]);
                Question {
                    question: format!("Where did {name} leave the {thing}?"),
                    answer: format!("{name} left the {thing} in the {}.", self.places[place]),
                    wrong: format!(
                        "{name} left the {thing} in the {}.",
                        other_place(rng, place)
                    ),
                }
            }
        };
        Some(question)
    }

    /// A question the story cannot answer, for preference data: what someone picked up who
    /// picked nothing up — in a story where nobody does (the rejected answer makes a pick-up up
    /// from an object of the story), or where one other person does (the rejected answer gives
    /// them that pick-up, which is what a model that finds the event by its verb alone says).
    /// The preferred answer says so: `Ada picked up nothing.` `None` when two or more people
    /// pick something up.
    pub fn unanswerable(&self, rng: &mut Rng) -> Option<Question> {
        let picks: Vec<(usize, usize)> = self
            .events
            .iter()
            .filter_map(|e| match *e {
                Event::PickUp { person, object } => Some((person, object)),
                _ => None,
            })
            .collect();
        let (person, object) = match picks[..] {
            [] => (rng.below(self.people.len()), rng.below(self.objects.len())),
            [(picker, object)] => {
                let n = self.people.len();
                ((picker + 1 + rng.below(n - 1)) % n, object)
            }
            _ => return None,
        };
        let name = self.people[person];
        Some(Question {
            question: format!("What did {name} pick up?"),
            answer: format!("{name} picked up nothing."),
            wrong: format!("{name} picked up the {}.", self.objects[object]),
        })
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

    /// `n` short stories with their questions, drawn as the `instructions` generator draws them.
    fn questioned(rng: &mut Rng, n: usize) -> Vec<(Story, Question)> {
        (0..n)
            .map(|_| super::super::questioned_story(rng, Story::question))
            .collect()
    }

    fn words(sentence: &str) -> Vec<&str> {
        sentence.trim_end_matches('.').split(' ').collect()
    }

    const VERBS: [&str; 4] = [
        " went to the ",
        " picked up the ",
        " gave the ",
        " left the ",
    ];

    #[test]
    fn the_answer_restates_the_one_event_of_its_kind() {
        let mut rng = Rng::new(7, 0);
        let mut asked = [0usize; 4];
        for (s, q) in questioned(&mut rng, 2000) {
            let body = s.body();
            let verb = VERBS.iter().position(|v| q.answer.contains(v)).unwrap();
            asked[verb] += 1;
            // The kind of event occurs once, and the answer is that sentence (a move's answer
            // leaves out what was carried).
            assert_eq!(body.matches(VERBS[verb]).count(), 1, "{q:?}\n{body}");
            assert!(
                body.contains(q.answer.trim_end_matches('.')),
                "{q:?}\n{body}"
            );
            // The wrong answer is the same sentence with another place of the story, or with the
            // object's noun in another colour or state.
            assert_ne!(q.answer, q.wrong, "{q:?}");
            assert!(
                !body.contains(q.wrong.trim_end_matches('.')),
                "{q:?}\n{body}"
            );
            let (right, wrong) = (words(&q.answer), words(&q.wrong));
            assert_eq!(right.len(), wrong.len(), "{q:?}");
            let differ: Vec<usize> = (0..right.len()).filter(|&i| right[i] != wrong[i]).collect();
            assert_eq!(differ.len(), 1, "{q:?}");
            let changed = wrong[differ[0]];
            match VERBS[verb] {
                " went to the " | " left the " => assert!(s.places.contains(&changed), "{q:?}"),
                _ => assert!(ADJECTIVES.contains(&changed), "{q:?}"),
            }
        }
        // Moves and pick-ups are most of the questions; hand-overs and put-downs, which need
        // an earlier pick-up, are rarer but asked.
        assert!(asked[0] > 600 && asked[1] > 300, "{asked:?}");
        assert!(asked[2] > 0 && asked[3] > 0, "{asked:?}");
    }

    #[test]
    fn unanswerable_questions_ask_someone_who_picked_nothing_up() {
        let mut rng = Rng::new(17, 0);
        let (mut nobody, mut someone_else) = (0, 0);
        for _ in 0..500 {
            let s = Story::with_events(&mut rng, 1, 3);
            let body = s.body();
            let picks = body.matches(" picked up the ").count();
            let Some(q) = s.unanswerable(&mut rng) else {
                assert!(picks >= 2, "{body}");
                continue;
            };
            let name = q.question.split(' ').nth(2).unwrap();
            assert!(s.people.contains(&name), "{q:?}");
            assert!(
                !body.contains(&format!("{name} picked up")),
                "{q:?}\n{body}"
            );
            assert_eq!(q.answer, format!("{name} picked up nothing."));
            let object = q
                .wrong
                .strip_prefix(&format!("{name} picked up the "))
                .unwrap();
            let object = object.trim_end_matches('.');
            assert!(s.objects.iter().any(|o| o == object), "{q:?}");
            if picks == 1 {
                // The rejected answer is the other person's pick-up, given to this one.
                assert!(
                    body.contains(&format!(" picked up the {object}.")),
                    "{q:?}\n{body}"
                );
                someone_else += 1;
            } else {
                assert_eq!(picks, 0, "{body}");
                nobody += 1;
            }
        }
        assert!(nobody > 50 && someone_else > 50, "{nobody} {someone_else}");
    }

    #[test]
    fn the_question_alone_does_not_give_the_answer() {
        // The best a model that ignores the story can do: answer each question with the answer
        // it most often had in training. On other stories that is right about one time in ten
        // at best (a place out of ten; an object out of 84), far from what reading gives.
        use std::collections::HashMap;
        let mut rng = Rng::new(11, 0);
        let mut seen: HashMap<String, HashMap<String, usize>> = HashMap::new();
        for (_, q) in questioned(&mut rng, 4000) {
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
        let right = questioned(&mut rng, trials)
            .into_iter()
            .filter(|(_, q)| guess(&q.question).as_deref() == Some(q.answer.as_str()))
            .count();
        assert!(
            right * 5 < trials,
            "{right} of {trials} right without the story"
        );
    }
}
