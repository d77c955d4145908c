module YoloSpp.Tests.CoreTests

open Expecto
let tests = testList "core" []
