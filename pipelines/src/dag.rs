//! The stage graph: topological order and upstream/downstream indexes.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use crate::manifest::Manifest;

/// The stages of a manifest as a graph, by index into [`Manifest::stages`].
///
/// Edges point from a stage to the stages it references (its upstream). The order is
/// deterministic: among stages that are ready at the same time, file order wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dag {
    order: Vec<usize>,
    upstream: Vec<Vec<usize>>,
    downstream: Vec<Vec<usize>>,
}

impl Dag {
    /// Builds the graph from each stage's upstream indexes (duplicates are ignored).
    ///
    /// Stages on a cycle (impossible for a loaded manifest, which is validated acyclic) are
    /// appended to the order in file order, so every stage appears exactly once.
    pub fn from_upstream(upstream: Vec<Vec<usize>>) -> Dag {
        let n = upstream.len();
        let upstream: Vec<Vec<usize>> = upstream
            .into_iter()
            .map(|mut ups| {
                ups.retain(|&u| u < n);
                ups.sort_unstable();
                ups.dedup();
                ups
            })
            .collect();
        let mut downstream = vec![Vec::new(); n];
        for (i, ups) in upstream.iter().enumerate() {
            for &u in ups {
                downstream[u].push(i);
            }
        }
        let mut waiting: Vec<usize> = upstream.iter().map(Vec::len).collect();
        let mut ready: BinaryHeap<Reverse<usize>> =
            (0..n).filter(|&i| waiting[i] == 0).map(Reverse).collect();
        let mut order = Vec::with_capacity(n);
        let mut placed = vec![false; n];
        while let Some(Reverse(i)) = ready.pop() {
            order.push(i);
            placed[i] = true;
            for &d in &downstream[i] {
                waiting[d] -= 1;
                if waiting[d] == 0 {
                    ready.push(Reverse(d));
                }
            }
        }
        order.extend((0..n).filter(|&i| !placed[i]));
        Dag {
            order,
            upstream,
            downstream,
        }
    }

    /// How many stages can run at once at most, estimated as the largest number of stages at
    /// the same depth (longest chain of upstream stages before them). A chain has width 1.
    pub fn width(&self) -> usize {
        self.width_among(|_| true)
    }

    /// [`Dag::width`] of the stages for which `member` is true, the others left out: the stages
    /// that will run, when the rest are cached. Depths count member stages only.
    pub fn width_among(&self, member: impl Fn(usize) -> bool) -> usize {
        let mut depth = vec![0usize; self.len()];
        let mut per_level = vec![0usize; self.len()];
        for &i in self.topo_order() {
            if !member(i) {
                continue;
            }
            depth[i] = self.upstream[i]
                .iter()
                .filter(|&&u| member(u))
                .map(|&u| depth[u] + 1)
                .max()
                .unwrap_or(0);
            per_level[depth[i]] += 1;
        }
        per_level.into_iter().max().unwrap_or(0)
    }

    /// Stage indexes such that every stage comes after all of its upstream stages.
    pub fn topo_order(&self) -> &[usize] {
        &self.order
    }

    /// The stages that stage `i` reads from, in file order.
    ///
    /// # Panics
    /// If `i` is not a stage index.
    pub fn upstream(&self, i: usize) -> &[usize] {
        &self.upstream[i]
    }

    /// The stages that read from stage `i`, in file order.
    ///
    /// # Panics
    /// If `i` is not a stage index.
    pub fn downstream(&self, i: usize) -> &[usize] {
        &self.downstream[i]
    }

    /// Number of stages.
    pub fn len(&self) -> usize {
        self.upstream.len()
    }

    /// Whether the graph has no stages.
    pub fn is_empty(&self) -> bool {
        self.upstream.is_empty()
    }

    /// Stage `i` and everything upstream of it, in topological order (what must run for it).
    pub fn ancestors_and_self(&self, i: usize) -> Vec<usize> {
        let mut wanted = vec![false; self.len()];
        let mut queue = VecDeque::from([i]);
        while let Some(j) = queue.pop_front() {
            if j < wanted.len() && !wanted[j] {
                wanted[j] = true;
                queue.extend(self.upstream[j].iter().copied());
            }
        }
        self.order.iter().copied().filter(|&j| wanted[j]).collect()
    }
}

impl Manifest {
    /// The stage graph. Loading validated it acyclic and every reference resolvable; references
    /// to unknown stages in a hand-built manifest are ignored.
    pub fn dag(&self) -> Dag {
        let upstream = self
            .stages
            .iter()
            .map(|stage| {
                stage
                    .params
                    .references()
                    .iter()
                    .filter_map(|r| self.index_of(&r.stage))
                    .collect()
            })
            .collect();
        Dag::from_upstream(upstream)
    }

    /// The manifest cut down to the stages `targets` need: each target and everything upstream
    /// of it, in file order (`binarylm run STAGE…`). The stages left out are not referenced by
    /// any stage kept, so the result is a valid manifest of its own. Errs with the first name
    /// that is not a stage.
    pub fn select(&self, targets: &[String]) -> Result<Manifest, UnknownStage> {
        let dag = self.dag();
        let mut keep = vec![false; self.stages.len()];
        for name in targets {
            let idx = self.index_of(name).ok_or_else(|| UnknownStage {
                name: name.clone(),
                known: self.stages.iter().map(|s| s.name.clone()).collect(),
            })?;
            for j in dag.ancestors_and_self(idx) {
                keep[j] = true;
            }
        }
        let mut selected = self.clone();
        selected.stages = self
            .stages
            .iter()
            .zip(keep)
            .filter(|(_, k)| *k)
            .map(|(s, _)| s.clone())
            .collect();
        Ok(selected)
    }
}

/// A stage name that the manifest does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no stage `{name}` in the manifest (its stages: {})", known.join(", "))]
pub struct UnknownStage {
    pub name: String,
    pub known: Vec<String>,
}

/// Cycles in a graph given as upstream lists, each as the stages along it (starting at the
/// lowest index, following "needs" edges), shortest first found per start. Self-loops are not
/// included (they are reported as self-references). Each stage appears in at most one cycle.
pub(crate) fn find_cycles(upstream: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = upstream.len();
    let mut on_reported = vec![false; n];
    let mut cycles = Vec::new();
    for start in 0..n {
        if on_reported[start] {
            continue;
        }
        // Breadth-first from `start` along "needs" edges, looking for the way back to it.
        let mut parent: Vec<Option<usize>> = vec![None; n];
        let mut queue = VecDeque::new();
        let mut back = None;
        for &next in &upstream[start] {
            if next == start || next >= n || on_reported[next] || parent[next].is_some() {
                continue;
            }
            parent[next] = Some(start);
            queue.push_back(next);
        }
        'search: while let Some(node) = queue.pop_front() {
            for &next in &upstream[node] {
                if next == start {
                    back = Some(node);
                    break 'search;
                }
                if next < n && !on_reported[next] && parent[next].is_none() {
                    parent[next] = Some(node);
                    queue.push_back(next);
                }
            }
        }
        if let Some(last) = back {
            let mut path = vec![last];
            let mut at = last;
            while let Some(p) = parent[at] {
                if p == start {
                    break;
                }
                path.push(p);
                at = p;
            }
            path.push(start);
            path.reverse();
            for &i in &path {
                on_reported[i] = true;
            }
            cycles.push(path);
        }
    }
    cycles
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn width_counts_the_widest_level() {
        assert_eq!(
            Dag::from_upstream(vec![vec![], vec![0], vec![1]]).width(),
            1
        );
        // 0 and 1 are roots; 2 needs both; 3 and 4 need 2.
        let dag = Dag::from_upstream(vec![vec![], vec![], vec![0, 1], vec![2], vec![2]]);
        assert_eq!(dag.width(), 2);
        let fan = Dag::from_upstream(vec![vec![], vec![0], vec![0], vec![0]]);
        assert_eq!(fan.width(), 3);
        assert_eq!(Dag::from_upstream(vec![]).width(), 0);
    }

    #[test]
    fn width_among_leaves_out_the_other_stages() {
        // 1, 2 and 3 all read 0; with 2 and 3 cached only 0 → 1 runs: a chain.
        let fan = Dag::from_upstream(vec![vec![], vec![0], vec![0], vec![0]]);
        assert_eq!(fan.width_among(|i| i <= 1), 1);
        assert_eq!(fan.width_among(|i| i != 0), 3);
        assert_eq!(fan.width_among(|_| false), 0);
    }

    #[test]
    fn topological_order_respects_edges_and_file_order() {
        // 0 needs 2, 1 needs nothing, 2 needs 1, 3 needs 0 and 1.
        let dag = Dag::from_upstream(vec![vec![2], vec![], vec![1], vec![0, 1, 1]]);
        assert_eq!(dag.topo_order(), &[1, 2, 0, 3]);
        assert_eq!(dag.upstream(3), &[0, 1]);
        assert_eq!(dag.downstream(1), &[2, 3]);
        assert_eq!(dag.ancestors_and_self(0), vec![1, 2, 0]);
    }

    #[test]
    fn select_keeps_the_targets_and_their_upstream_in_file_order() {
        let yaml = "name: sel\nstages:\n  a:\n    kind: command\n    run: echo a\n  \
                    d:\n    kind: command\n    run: echo d\n  b:\n    kind: command\n    \
                    run: echo b\n    inputs: [a]\n  c:\n    kind: command\n    run: echo c\n    \
                    inputs: [b, d]\n";
        let m = crate::parse(yaml, std::path::Path::new("/tmp/sel.yaml")).unwrap();
        let names =
            |m: &Manifest| -> Vec<String> { m.stages.iter().map(|s| s.name.clone()).collect() };
        assert_eq!(names(&m.select(&["b".into()]).unwrap()), ["a", "b"]);
        assert_eq!(
            names(&m.select(&["c".into()]).unwrap()),
            ["a", "d", "b", "c"]
        );
        assert_eq!(
            names(&m.select(&["d".into(), "a".into()]).unwrap()),
            ["a", "d"]
        );
        let err = m.select(&["b".into(), "x".into()]).unwrap_err();
        assert_eq!(err.name, "x");
        assert_eq!(
            err.to_string(),
            "no stage `x` in the manifest (its stages: a, d, b, c)"
        );
    }

    #[test]
    fn independent_stages_keep_file_order() {
        let dag = Dag::from_upstream(vec![vec![], vec![], vec![]]);
        assert_eq!(dag.topo_order(), &[0, 1, 2]);
    }

    #[test]
    fn cycles_are_found_with_their_path() {
        // a(0) needs b(1), b needs c(2), c needs a; d(3) needs a (not on the cycle).
        let cycles = find_cycles(&[vec![1], vec![2], vec![0], vec![0]]);
        assert_eq!(cycles, vec![vec![0, 1, 2]]);
        assert!(
            find_cycles(&[vec![0], vec![0]]).is_empty(),
            "self-loops are separate"
        );
        assert_eq!(find_cycles(&[vec![1], vec![0], vec![3], vec![2]]).len(), 2);
    }

    #[test]
    fn a_cyclic_graph_still_lists_every_stage_once() {
        let dag = Dag::from_upstream(vec![vec![1], vec![0], vec![]]);
        let mut order = dag.topo_order().to_vec();
        assert_eq!(order[0], 2);
        order.sort_unstable();
        assert_eq!(order, vec![0, 1, 2]);
    }
}
