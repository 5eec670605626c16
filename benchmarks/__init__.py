"""Side-by-side timings of numtorch and PyTorch on the CPU (``python -m benchmarks``).

Both libraries start from the same weights and see the same synthetic
MNIST-shaped float32 batches; they are alternated repetition by repetition so
that machine drift hits both alike, and every row reports the median time and
the ratio numtorch / PyTorch.
"""
