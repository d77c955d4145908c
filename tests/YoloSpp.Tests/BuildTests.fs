module YoloSpp.Tests.BuildTests

open Expecto
let tests = testList "build" []
