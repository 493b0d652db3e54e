"""The words of the patrol member's pages ("my area") and the station officer's page."""

from geogrid import optimiser_proposal as proposal

#: English message → Chinese. Keys are exactly the strings passed to ``_()`` and ``gettext``.
ZH_CN: dict[str, str] = {
    # My area
    "You are not a member of an active patrol team. Ask your station to enter your user name "
    "in the member list of your team.": (
        "您还不是在岗巡防队的队员。请联系派出所在队员名单中登记您的用户名。"
    ),
    "Team": "巡防队",
    "This shift": "本班次",
    "Not visited yet this shift": "本班次尚未巡查的网格",
    "Every grid of this shift has had a visit.": "本班次的网格都已巡查。",
    "No shift of your team is running now (%(time)s).": "现在（%(time)s）本队没有在岗班次。",
    "Assigned grids": "责任网格",
    "Shift": "班次",
    "Shifts": "班次",
    "Your team has no assigned grid.": "本队尚未分配责任网格。",
    "Upload a track": "上传巡逻轨迹",
    "File a lead": "报送线索",
    "Recent tracks": "近期轨迹",
    "The last %(days)s days": "最近 %(days)s 天",
    "Track": "轨迹",
    "Fixes": "定位点",
    "No track in these days.": "这几天没有轨迹。",
    "Our leads": "本队线索",
    "Our leads in this grid": "本队在此网格的线索",
    "Time": "时间",
    "No lead in the last 30 days.": "最近 30 天没有线索。",
    "locked": "已锁定",
    # The track report
    "Track %(id)s: quality report": "轨迹 %(id)s：质量报告",
    "%(count)s fixes": "%(count)s 个定位点",
    "part %(part)s of %(parts)s": "第 %(part)s 段，共 %(parts)s 段",
    "Fixes received": "收到的定位点",
    "Fixes kept": "保留的定位点",
    "Tracks made": "生成的轨迹段",
    "Unusable fixes dropped": "无效定位点（已剔除）",
    "Fixes out of time order, sorted": "时间顺序错乱的定位点（已排序）",
    "Repeated times dropped": "时间重复的定位点（已剔除）",
    "GPS spike fixes dropped": "GPS 漂移点（已剔除）",
    "Impossible jumps (track split)": "不可能的跳跃（轨迹已分段）",
    "Gaps without fixes (track split)": "无定位的时间空档（轨迹已分段）",
    "Idle fixes dropped": "长时间静止的定位点（已剔除）",
    "Lone fixes left out": "孤立定位点（未计入）",
    "Fixes outside every grid": "网格范围外的定位点",
    # The forms
    "Track file (GPX, GeoJSON, CSV or Excel)": "轨迹文件（GPX、GeoJSON、CSV 或 Excel）",
    "Coordinates of the file": "文件的坐标系",
    "WGS84 (GPS, GPX files)": "WGS84（GPS 原始坐标，GPX 文件）",
    "CGCS2000 (national grid maps)": "CGCS2000（国家大地坐标系，网格地图）",
    "GCJ-02 (Amap, Tencent maps)": "GCJ-02（高德、腾讯地图）",
    "BD-09 (Baidu maps)": "BD-09（百度地图）",
    "Upload the track": "上传轨迹",
    "Click the map where it was, or choose one of your grids.": (
        "在地图上点击发现地点，或选择一个责任网格。"
    ),
    "Longitude": "经度",
    "Latitude": "纬度",
    "(the point on the map)": "（地图上点击的位置）",
    "What was seen": "发现的情况",
    "File the lead": "报送线索",
    "Track %(id)s stored.": "轨迹 %(id)s 已保存。",
    "This track was uploaded before as track %(id)s.": "该轨迹此前已上传，为轨迹 %(id)s。",
    "outside every grid": "不在任何网格内",
    "Lead %(id)s filed (%(grid)s).": "线索 %(id)s 已报送（%(grid)s）。",
    "This lead was filed before as lead %(id)s.": "该线索此前已报送，为线索 %(id)s。",
    # The station page
    "Date": "日期",
    "Coverage": "巡查覆盖",
    "Minutes inside": "网格内分钟数",
    "Share of area reached (slower)": "覆盖面积比例（较慢）",
    "No police station is within your scope.": "您的管辖范围内没有派出所。",
    "Teams": "巡防队",
    "%(count)s assignments with a shift on this day.": "当天有班次的分配共 %(count)s 条。",
    "Assignment optimiser": "责任区优化分配",
    "Time limit (seconds)": "计算时限（秒）",
    "The optimiser searches for at most this long (10 seconds by default, %(max)s at most); "
    "the page waits meanwhile. A large station may stop at the limit with the best answer "
    "found so far and its gap to the bound.": (
        "优化计算最多持续这么长时间（默认 10 秒，最多 %(max)s 秒），期间页面需等待。"
        "较大的派出所可能在时限到达时停止，给出当前最优方案及其与下界的差距。"
    ),
    "Run the optimiser": "运行优化",
    "Proposal from %(day)s": "优化方案（自 %(day)s 起）",
    "Solver": "求解器",
    "Objective": "目标值",
    "Gap to the bound": "与下界的差距",
    "Term": "目标项",
    "Value": "取值",
    "Weight": "权重",
    "Balance (share of workload to move)": "均衡（需调整的工作量比例）",
    "Worst team (deviation from its share)": "最不均衡的队（偏离应分担量）",
    "Travel (km per grid)": "路程（每个网格公里数）",
    "Split boundaries (share)": "分割的网格边界（比例）",
    "Overload (share of workload)": "超负荷（工作量比例）",
    "%(added)s added, %(kept)s kept, %(locked)s locked and kept, %(removed)s ended.": (
        "新增 %(added)s 条，保持 %(kept)s 条，锁定保留 %(locked)s 条，撤销 %(removed)s 条。"
    ),
    "Change": "变化",
    "Ended": "撤销",
    "Grids": "网格数",
    "Load / capacity": "工作量 / 能力",
    "Travel (km)": "路程（公里）",
    "Accepting ends the replaced assignments the day before and adds the new ones; locked "
    "assignments are kept. The proposal can be accepted for an hour.": (
        "采纳后，被替换的分配在方案生效前一天结束，并新增方案中的分配；锁定的分配保持不变。"
        "方案在一小时内可以采纳。"
    ),
    "Accept this proposal": "采纳此方案",
    "Proposal accepted from %(day)s: %(added)s assignments added, %(ended)s ended, "
    "%(deleted)s deleted.": (
        "方案已采纳，自 %(day)s 起生效：新增 %(added)s 条分配，"
        "结束 %(ended)s 条，删除 %(deleted)s 条。"
    ),
    "Coverage gaps": "防范盲区",
    "Hot grids (high risk) short of the patrol dose, highest score first.": (
        "巡查不足的高风险网格，按盲区分值从高到低排列。"
    ),
    "Risk": "风险",
    "Shifts met": "达标班次",
    "Unprotected": "未防护",
    "No coverage gap on this day.": "当天没有防范盲区。",
    "Dosage": "巡查剂量",
    "Target: a visit of at least %(min)s minutes (%(max)s at most pays off), and no more "
    "than %(gap)s minutes without one.": (
        "目标：每次停留至少 %(min)s 分钟（超过 %(max)s 分钟收效递减），"
        "且两次达标停留之间不超过 %(gap)s 分钟。"
    ),
    "Visits": "到访",
    "Minutes": "分钟",
    "Longest gap": "最长间隔（分钟）",
    "Met": "达标",
    "Visits: those of the target length / all visits. The longest gap counts from the start "
    "to the end of the shift.": (
        "到访：达到目标时长的次数 / 全部次数。最长间隔从班次开始算到班次结束。"
    ),
    "No shift on this day.": "当天没有班次。",
    # The optimiser's remarks on a proposal (geogrid.optimiser_proposal.NOTE_TEMPLATES)
    proposal.NOT_ENOUGH_CAPACITY: (
        "运力不足：这些网格每周需要 %(workload)s 个工作量单位，在岗巡防队只能承担 %(capacity)s，"
        "无论怎样分配都有 %(shortfall)s 超出运力；请增加巡防队或提高其运力"
    ),
    proposal.OVER_CAPACITY: "超出运力：%(teams)s",
    proposal.NO_GRID: "未分到网格的巡防队：%(teams)s",
    proposal.TIME_LIMIT_WITH_GAP: (
        "求解到达时限而停止：找到的最佳分配（%(source)s）比 HiGHS 的界高 %(gap)s；"
        "给更多时间可能找到更好的分配"
    ),
    proposal.TIME_LIMIT_WITHOUT_BOUND: (
        "求解在 HiGHS 得出界之前到达时限，差距未知（答案来自 %(source)s）；给更多时间可得出差距"
    ),
    proposal.SOLVER_STOPPED: "HiGHS：%(message)s；答案来自 %(source)s",
    proposal.LEFT_OUT: "不在当前网格版本中、未参与分配的网格：%(grids)s",
}
