using System.Collections.Concurrent;
using System.Reflection;
using Mnemo.Runtime;
using Mnemo.Tests;
using Xunit.Sdk;

[assembly: QuietGcDuringTests]

namespace Mnemo.Tests;

/// <summary>
/// Every test runs inside a <see cref="GcQuiet"/> stretch, as the library's own training steps, evaluations and
/// kernel calls do: tests call libtorch directly (a model's forward and backward, the kernels), and a collection that
/// the test runner's threads trigger mid-call can free an implicit Scalar that libtorch is still reading (it crashed
/// `MixerTests.Every_parameter_receives_a_gradient(Retnet)` once in a full run; docs/architecture.md).
/// </summary>
[AttributeUsage(AttributeTargets.Assembly)]
public sealed class QuietGcDuringTestsAttribute : BeforeAfterTestAttribute
{
    // Stretches are counted, not owned, so any one of the open stretches may close a finishing test's.
    readonly ConcurrentBag<GcQuiet> _open = [];

    public override void Before(MethodInfo methodUnderTest)
    {
        if (!OwnsStretches(methodUnderTest)) _open.Add(GcQuiet.Enter());
    }

    public override void After(MethodInfo methodUnderTest)
    {
        if (!OwnsStretches(methodUnderTest) && _open.TryTake(out var quiet)) quiet.Dispose();
    }

    static bool OwnsStretches(MethodInfo m) => m.DeclaringType?.IsDefined(typeof(OwnsGcQuietAttribute)) == true;
}

/// <summary>A test class that opens and closes stretches itself and asserts on them, so it runs outside one.</summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class OwnsGcQuietAttribute : Attribute;
