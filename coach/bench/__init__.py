"""`coach bench`: speed, memory and quality per quantization level on this machine, the ladder it builds,
and the plot it writes."""
