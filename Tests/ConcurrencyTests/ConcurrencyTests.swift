import Concurrency
import Foundation
import Testing

@Suite struct ParallelPartsTests {
    @Test(arguments: [0, 1, 2, 255, 256, 257, 10_000])
    func mapKeepsTheOrderAtEverySize(count: Int) {
        let items = Array(0..<count)
        #expect(ParallelParts.map(items) { $0 * 3 } == items.map { $0 * 3 })
        #expect(ParallelParts.map(items, grain: 1) { "\($0)" } == items.map { "\($0)" })
    }

    @Test func forEachRunsEveryPartOnce() {
        let seen = Locked<[Int]>([])
        ParallelParts.forEach(parts: 64) { part in
            seen.update { $0.append(part) }
        }
        #expect(seen.get().sorted() == Array(0..<64))
    }
}

@Suite struct ThreadTests {
    @Test func backgroundWorkReturnsOrThrowsOnItsOwnThread() throws {
        let caller = pthread_self()
        let work = Background { pthread_equal(pthread_self(), caller) == 0 }
        #expect(try work.value(), "the work ran on another thread")
        struct Boom: Error {}
        let failing = Background<Int> { throw Boom() }
        #expect(throws: Boom.self) { try failing.value() }
        #expect(failing.isDone)
    }

    @Test func offloadedWorkRunsOffTheCallersThread() async throws {
        let value = try await offload { (42, Thread.isMainThread) }
        #expect(value.0 == 42 && !value.1)
        struct Boom: Error {}
        await #expect(throws: Boom.self) { try await offload { () throws -> Int in throw Boom() } }
    }
}

@Suite struct TaskSignalTests {
    @Test func aSignalWithNoWaiterIsKeptForTheNextWait() async {
        let signal = WakeSignal()
        signal.signal()
        await signal.wait() // returns at once: the signal was kept
    }

    @Test func runSlotsLetNoMoreThanTheirCountIn() async {
        let slots = RunSlots(2)
        let inside = Locked(0), most = Locked(0)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    await slots.acquire()
                    inside.update { $0 += 1 }
                    let now = inside.get()
                    most.update { $0 = max($0, now) }
                    try? await Task.sleep(nanoseconds: 2_000_000)
                    inside.update { $0 -= 1 }
                    slots.release()
                }
            }
        }
        #expect(most.get() <= 2 && most.get() >= 1 && inside.get() == 0)
    }
}
