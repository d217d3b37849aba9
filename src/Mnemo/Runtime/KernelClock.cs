using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Runtime;

/// <summary>
/// Times the sequence kernels (memory kernels, attention) inside a model's forward and backward, for the breakdown of
/// `mnemo bench train` (docs/benchmarks.md#bench-train-whole-training-steps). Off unless <see cref="Enabled"/>; then a
/// mixer brackets its kernel call with <see cref="Begin"/>, <see cref="Span.In"/> on the kernel's inputs and
/// <see cref="Span.Out"/> on its output.
/// <para>
/// Forward: the wall-clock from Begin to Out. Backward: identity autograd nodes around the kernel record when the
/// output's gradient arrives and when the last input's gradient leaves. libtorch's CPU engine runs ready nodes latest
/// created first, so the kernel's own backward nodes run between the two: everything created before the inputs (the
/// projections) waits, and everything created after the output (gates, output projection, later layers) is upstream.
/// </para>
/// </summary>
public static class KernelClock
{
    /// <summary>Whether kernels are timed (process-wide; set by the benchmark around its steps).</summary>
    public static bool Enabled { get; set; }

    static readonly object Gate = new();
    static readonly List<Span> Spans = [];

    /// <summary>Starts timing one kernel call, or returns a span that does nothing when the clock is off.</summary>
    public static Span Begin() => Enabled ? new Span(Stopwatch.GetTimestamp()) : Span.Off;

    /// <summary>The kernels' forward and backward milliseconds since the last call, summed over calls; then forgets them.</summary>
    public static (double ForwardMs, double BackwardMs) Take()
    {
        lock (Gate)
        {
            double forward = Spans.Sum(s => s.ForwardMs), backward = Spans.Sum(s => s.BackwardMs);
            Spans.Clear();
            return (forward, backward);
        }
    }

    /// <summary>One kernel call.</summary>
    public sealed class Span
    {
        internal static readonly Span Off = new(0);

        readonly long _start;
        long _forwardEnd, _gradientIn = long.MaxValue, _gradientOut;

        internal Span(long start) => _start = start;

        internal double ForwardMs => Stopwatch.GetElapsedTime(_start, _forwardEnd).TotalMilliseconds;

        /// <summary>0 when no gradient passed through (a forward without backward).</summary>
        internal double BackwardMs =>
            _gradientOut > _gradientIn ? Stopwatch.GetElapsedTime(_gradientIn, _gradientOut).TotalMilliseconds : 0;

        /// <summary>A kernel input, marked so its gradient's departure is timed (null passes through).</summary>
        public Tensor? In(Tensor? x) => this == Off || x is null || !x.requires_grad ? x : Mark.Apply(this, x, false);

        /// <summary>The kernel's output: ends the forward clock and marks the gradient's arrival.</summary>
        public Tensor Out(Tensor y)
        {
            if (this == Off) return y;
            _forwardEnd = Stopwatch.GetTimestamp();
            lock (Gate) Spans.Add(this);
            return y.requires_grad ? Mark.Apply(this, y, true) : y;
        }

        internal void Backward(bool output, long now)
        {
            if (output) _gradientIn = Math.Min(_gradientIn, now);
            else _gradientOut = Math.Max(_gradientOut, now);
        }
    }

    /// <summary>Identity in both directions; its backward tells the span when the gradient passed.</summary>
    sealed class Mark : autograd.SingleTensorFunction<Mark>
    {
        public override string Name => nameof(KernelClock);

        public static Tensor Apply(Span span, Tensor x, bool output) => apply([span, x, output]);

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            ctx.save_data("span", vars[0]);
            ctx.save_data("output", vars[2]);
            return ((Tensor)vars[1]).alias();
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad)
        {
            BackwardResults.Release();
            ((Span)ctx.get_data("span")).Backward((bool)ctx.get_data("output"), Stopwatch.GetTimestamp());
            if (grad.IsInvalid) return [null!, null!, null!];
            using var scope = NewDisposeScope();
            return BackwardResults.Hand([null, grad.alias(), null]);
        }
    }
}
