use super::*;

async fn times_of(budget: &CallBudget, calls: usize) -> Vec<u64> {
    let start = Instant::now();
    let mut at = Vec::new();
    for _ in 0..calls {
        budget.take().await;
        at.push(start.elapsed().as_millis() as u64);
    }
    at
}

#[tokio::test(start_paused = true)]
async fn a_burst_goes_at_once_and_the_rest_at_the_rate() {
    let budget = CallBudget::new(CallRate {
        per_second: 2.0,
        burst: 3,
    });
    assert_eq!(
        times_of(&budget, 6).await,
        [0, 0, 0, 500, 1000, 1500],
        "three at once, then one every half second"
    );
}

#[tokio::test(start_paused = true)]
async fn a_quiet_spell_refills_the_bucket_up_to_its_size() {
    let budget = CallBudget::new(CallRate {
        per_second: 1.0,
        burst: 2,
    });
    times_of(&budget, 2).await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(times_of(&budget, 3).await, [0, 0, 1000]);
}

#[tokio::test(start_paused = true)]
async fn concurrent_callers_share_one_bucket() {
    let budget = CallBudget::new(CallRate {
        per_second: 4.0,
        burst: 1,
    });
    let start = Instant::now();
    let waits = futures::future::join_all((0..5).map(|_| {
        let b = budget.clone();
        async move {
            b.take().await;
            start.elapsed().as_millis() as u64
        }
    }))
    .await;
    let mut sorted = waits.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [0, 250, 500, 750, 1000]);
}

#[tokio::test(start_paused = true)]
async fn unlimited_never_waits() {
    let budget = CallBudget::new(CallRate::UNLIMITED);
    assert_eq!(times_of(&budget, 100).await.last(), Some(&0));
}
