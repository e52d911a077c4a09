"""Preparing beyond one round: a plan for your weak spots and its drills, a panel for your own job, your stories."""
