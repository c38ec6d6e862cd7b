"""Next-basket recommendation: baselines (G/P/GP-TopFreq, TIFU-KNN) and the learned ranker."""
