use mapreduce::app::for_each_word;
use mapreduce::hash::FnvBuildHasher;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::time::Instant;

fn count<S: BuildHasher + Default>(texts: &[String]) -> usize {
    let mut counts: HashMap<Box<str>, u64, S> = HashMap::default();
    for t in texts {
        for_each_word(t, |w| match counts.get_mut(w) {
            Some(n) => *n += 1,
            None => {
                counts.insert(w.into(), 1);
            }
        });
    }
    counts.len()
}

fn main() {
    let files: Vec<String> = std::env::args().skip(1).collect();
    let texts: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    for _ in 0..3 {
        let t = Instant::now();
        let n = count::<FnvBuildHasher>(&texts);
        println!("fnv  {n} {:?}", t.elapsed());
        let t = Instant::now();
        let n = count::<std::hash::RandomState>(&texts);
        println!("sip  {n} {:?}", t.elapsed());
        let t = Instant::now();
        let mut w = 0;
        for t in &texts {
            for_each_word(t, |_| w += 1);
        }
        println!("tokenize only {w} {:?}", t.elapsed());
    }
}
