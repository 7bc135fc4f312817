import Manifests
import Planner
import Reports
import Scheduling
import Sync

// The types of lower modules that appear in what the Reconciler hands to its callers. The CLI
// imports the Reconciler only, and names them through these.

public typealias ApprovalDecision = Manifests.ApprovalDecision
public typealias ApprovalRequest = Reports.ApprovalRequest
public typealias DurationText = Manifests.DurationText
public typealias FireDecision = Scheduling.FireDecision
public typealias JobProgress = Sync.JobProgress
public typealias ObjectKey = Manifests.ObjectKey
public typealias PlanFormat = Planner.PlanFormat
public typealias RunReport = Reports.RunReport
